"""Receipts close the loop: a WeChat subscriber counts as reached only when WeChat confirms the message arrived —
with the server URL in plain, compatible or safe (encrypted) mode."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import aiohttp
import pytest
from aiohttp.test_utils import TestServer

from channels.wechat import callback_signature
from notifier.coverage import alert_coverage
from notifier.fakes.webhook_receiver import RunningReceiver
from notifier.fakes.wechat import RunningWechat, signed_query, start_wechat
from notifier.models import AlertIn
from notifier.publish import publish_alert
from notifier.service import Service
from notifier.web import create_app
from tests.conftest import SettingsFactory, settle

pytestmark = pytest.mark.both_backends  # SQLite and PostgreSQL (tests/conftest.py)

OPENID = "oRcpt0000000000000000000abcd"
TOKEN = "callback-token"
AES_KEY = "kWxPEV2UEDyxWpmPdKC3F4dgPDmOvfKX1HGnEUDS1aR"  # an EncodingAESKey: 43 characters of base64
MODES = ["plain", "compatible", "safe"]


@dataclass
class Wired:
    service: Service
    wechat: RunningWechat
    base: str  # our server's base URL


@pytest.fixture
async def wired(make_settings: SettingsFactory, request: pytest.FixtureRequest) -> AsyncIterator[Wired]:
    """The service with a WeChat channel on the fake WeChat API, whose events come back to our callback URL, in the
    callback mode the test asks for (`indirect` parameter; plain by default)."""
    async with _wired(make_settings, getattr(request, "param", "plain")) as wiring:
        yield wiring


@asynccontextmanager
async def _wired(make_settings: SettingsFactory, mode: str, **settings: Any) -> AsyncIterator[Wired]:
    """`wired`, in callback `mode`, with more `settings`."""
    keyed = {"encoding_aes_key": AES_KEY} if mode != "plain" else {}
    fake = await start_wechat(app_id="wx-test", app_secret="secret", token=TOKEN, callback_mode=mode, **keyed)
    config = make_settings(channels={"wechat": {"endpoint": fake.url, "app_id": "wx-test", "app_secret": "secret",
                                                "token": TOKEN, "template_id": "TPL-1", "callback_mode": mode,
                                                **keyed}}, **settings)
    service = Service(config)
    await service.open()
    server = TestServer(create_app(config, service=service), host="127.0.0.1")
    await server.start_server()
    fake.callback_url = str(server.make_url("/v1/wechat/callback"))
    try:
        yield Wired(service, fake, str(server.make_url("")).rstrip("/"))
    finally:
        await server.close()
        await service.close()
        await fake.stop()


async def _subscribe(service: Service, receiver: RunningReceiver | None = None) -> None:
    from notifier.subscribers import create_subscriber
    from subscriptions.models import SubscriberIn

    contacts: dict[str, str] = {"wechat": OPENID}
    channels = ["wechat"]
    if receiver is not None:
        contacts["webhook"] = receiver.url_for("/after-wechat")
        channels.append("webhook")
    body = SubscriberIn.model_validate({"contacts": contacts, "region": "140402", "subscriptions": [
        {"topic": "env.heavy-pollution", "channels": channels}]})
    await create_subscriber(service.store, body, allow_private_webhooks=True)


async def _until(predicate_coro: object, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if await predicate_coro():  # type: ignore[operator]
            return
        await asyncio.sleep(0.05)
    raise AssertionError("condition not met in time")


async def _status(service: Service, alert_id: str, channel: str) -> str:
    rows, _ = await service.store.list_deliveries(alert_id, 10, None, channel=channel)
    return rows[0].status


@pytest.mark.parametrize("wired", MODES, indirect=True)
async def test_accepted_is_not_reached_until_the_receipt_arrives(wired: Wired) -> None:
    """WeChat's acceptance makes the delivery `sent`; the TEMPLATESENDJOBFINISH success makes it reached."""
    await _subscribe(wired.service)
    alert, _ = await publish_alert(wired.service.store, AlertIn(topic="env.heavy-pollution", headline="预警",
                                                                severity="severe"), None)
    await settle(wired.service)
    await _until(lambda: _reached(wired.service, alert.id))
    coverage = await alert_coverage(wired.service.store, alert.id)
    assert (coverage.accepted, coverage.reached) == (1, 1)
    assert coverage.by_channel["wechat"].delivered == 1


async def _reached(service: Service, alert_id: str) -> bool:
    return (await alert_coverage(service.store, alert_id)).reached == 1


@pytest.mark.parametrize("wired", MODES, indirect=True)
async def test_a_failure_receipt_falls_back_to_the_next_channel(wired: Wired, receiver: RunningReceiver) -> None:
    """A user who blocks the message gets the alert on the next channel of their subscription."""
    wired.wechat.script(OPENID, "receipt_fail")
    await _subscribe(wired.service, receiver)
    alert, _ = await publish_alert(wired.service.store, AlertIn(topic="env.heavy-pollution", headline="预警",
                                                                policy="fallback"), None)
    await settle(wired.service)

    async def fell_back() -> bool:
        await settle(wired.service)
        return await _status(wired.service, alert.id, "webhook") == "delivered"

    await _until(fell_back)
    assert await _status(wired.service, alert.id, "wechat") == "failed"


async def test_a_red_warnings_failure_receipt_reaches_the_next_channel_without_waiting_for_the_workers_poll(
        make_settings: SettingsFactory, receiver: RunningReceiver) -> None:
    """The worker polls once an hour, and its routine claims leave life-safety rows to its life-safety loop: only
    the report that failed the WeChat message, which queued the person's next channel, can tell that loop of it."""
    async with _wired(make_settings, "plain", worker={"enabled": True, "poll_interval": 3600}) as wired:
        wired.wechat.script(OPENID, "receipt_fail")
        await _subscribe(wired.service, receiver)
        wired.service.start_worker()
        alert, _ = await publish_alert(wired.service.store, AlertIn(
            topic="env.heavy-pollution", headline="红色预警", severity="extreme", policy="fallback"), None)
        wired.service.dispatcher.wake(alert)  # as the API does

        async def fell_back() -> bool:
            return await _status(wired.service, alert.id, "webhook") == "delivered"

        await _until(fell_back)
        assert await _status(wired.service, alert.id, "wechat") == "failed"


async def test_a_forged_receipt_changes_nothing(wired: Wired) -> None:
    """An event without a valid signature is refused and the delivery stays unconfirmed."""
    wired.wechat.script(OPENID, "no_receipt")
    await _subscribe(wired.service)
    alert, _ = await publish_alert(wired.service.store, AlertIn(topic="env.heavy-pollution", headline="预警",
                                                                severity="severe"), None)
    await settle(wired.service)
    rows, _ = await wired.service.store.list_deliveries(alert.id, 10, None)
    xml = (f"<xml><FromUserName>{OPENID}</FromUserName><MsgType>event</MsgType>"
           f"<Event>TEMPLATESENDJOBFINISH</Event><MsgID>{rows[0].provider_message_id}</MsgID>"
           "<Status>success</Status></xml>")
    params = {"signature": "0" * 40, "timestamp": str(int(time.time())), "nonce": "1"}
    async with aiohttp.ClientSession() as http:
        async with http.post(f"{wired.base}/v1/wechat/callback", params=params, data=xml) as response:
            assert response.status == 401
    assert await _status(wired.service, alert.id, "wechat") == "sent"


async def test_a_replayed_receipt_is_counted_once(wired: Wired) -> None:
    """The same signed receipt posted twice is applied once and acknowledged both times."""
    wired.wechat.script(OPENID, "no_receipt")
    await _subscribe(wired.service)
    alert, _ = await publish_alert(wired.service.store, AlertIn(topic="env.heavy-pollution", headline="预警",
                                                                severity="severe"), None)
    await settle(wired.service)
    rows, _ = await wired.service.store.list_deliveries(alert.id, 10, None)
    xml = (f"<xml><FromUserName>{OPENID}</FromUserName><MsgType>event</MsgType>"
           f"<Event>TEMPLATESENDJOBFINISH</Event><MsgID>{rows[0].provider_message_id}</MsgID>"
           "<Status>success</Status></xml>")
    timestamp, nonce = str(int(time.time())), "42"
    params = {"signature": callback_signature(TOKEN, timestamp, nonce), "timestamp": timestamp, "nonce": nonce}
    async with aiohttp.ClientSession() as http:
        for _ in range(2):
            async with http.post(f"{wired.base}/v1/wechat/callback", params=params, data=xml) as response:
                assert response.status == 200 and await response.text() == "success"
    coverage = await alert_coverage(wired.service.store, alert.id)
    assert coverage.reached == 1 and coverage.by_channel["wechat"].delivered == 1


async def test_the_handshake_echoes_echostr_only_when_signed(wired: Wired) -> None:
    """WeChat's server-URL check gets its echostr back; a wrong signature gets nothing."""
    timestamp, nonce = str(int(time.time())), "7"
    good = {"signature": callback_signature(TOKEN, timestamp, nonce), "timestamp": timestamp, "nonce": nonce,
            "echostr": "hello-wechat"}
    async with aiohttp.ClientSession() as http:
        async with http.get(f"{wired.base}/v1/wechat/callback", params=good) as response:
            assert (response.status, await response.text()) == (200, "hello-wechat")
        async with http.get(f"{wired.base}/v1/wechat/callback", params={**good, "signature": "f" * 40}) as response:
            assert response.status == 401


@pytest.mark.parametrize("wired", MODES, indirect=True)
async def test_unfollowing_stops_wechat_for_that_user(wired: Wired) -> None:
    """After an unsubscribe event the next alert creates no WeChat delivery for that user."""
    await _subscribe(wired.service)
    await wired.wechat.push_event(OPENID, "unsubscribe")
    await wired.wechat.wait_pushes()
    alert, _ = await publish_alert(wired.service.store, AlertIn(topic="env.heavy-pollution", headline="预警"), None)
    rows, _ = await wired.service.store.list_deliveries(alert.id, 10, None)
    assert rows == [] and alert.targeted == 1


async def test_silence_past_the_fallback_window_tries_the_next_channel(
        wired: Wired, receiver: RunningReceiver) -> None:
    """No receipt within the alert's fallback window: the next channel goes out, the first stays unconfirmed."""
    wired.wechat.script(OPENID, "no_receipt")
    await _subscribe(wired.service, receiver)
    alert, _ = await publish_alert(wired.service.store, AlertIn(topic="env.heavy-pollution", headline="预警",
                                                                policy="fallback", fallback_after=1), None)
    await settle(wired.service)
    assert await _status(wired.service, alert.id, "webhook") == "skipped"

    async def fell_back() -> bool:
        await wired.service.dispatcher.run_once()
        return await _status(wired.service, alert.id, "webhook") == "delivered"

    await _until(fell_back)
    assert await _status(wired.service, alert.id, "wechat") == "sent"
    coverage = await alert_coverage(wired.service.store, alert.id)
    assert coverage.by_channel["wechat"].awaiting_receipt == 1 and coverage.reached == 1


def _event(msg_id: str | None) -> bytes:
    return (f"<xml><ToUserName>gh_x</ToUserName><FromUserName>{OPENID}</FromUserName><MsgType>event</MsgType>"
            f"<Event>TEMPLATESENDJOBFINISH</Event><MsgID>{msg_id}</MsgID><Status>success</Status></xml>").encode()


@pytest.mark.parametrize("wired", ["safe"], indirect=True)
async def test_safe_mode_takes_no_plaintext_and_no_forged_ciphertext(wired: Wired) -> None:
    """In safe mode a plaintext event is refused (400) and an encrypted one with a wrong msg_signature is 401;
    neither confirms the delivery."""
    wired.wechat.script(OPENID, "no_receipt")
    await _subscribe(wired.service)
    alert, _ = await publish_alert(wired.service.store, AlertIn(topic="env.heavy-pollution", headline="预警"), None)
    await settle(wired.service)
    rows, _ = await wired.service.store.list_deliveries(alert.id, 10, None)
    plain = _event(rows[0].provider_message_id)
    query, sealed = wired.wechat.envelope(OPENID, plain)
    async with aiohttp.ClientSession() as http:
        for params, body, status in ((signed_query(TOKEN, OPENID), plain, 400),
                                     ({**query, "msg_signature": "0" * 40}, sealed, 401)):
            async with http.post(f"{wired.base}/v1/wechat/callback", params=params, data=body) as response:
                assert response.status == status
    assert await _status(wired.service, alert.id, "wechat") == "sent"


@pytest.mark.parametrize("wired", ["safe"], indirect=True)
async def test_an_encrypted_handshake_echoes_the_decrypted_echostr(wired: Wired) -> None:
    """A handshake carrying msg_signature and an encrypted echostr is answered with the echostr inside; the plain
    handshake of official accounts keeps working in safe mode."""
    crypt = wired.wechat.crypt
    assert crypt is not None
    timestamp, nonce = str(int(time.time())), "9"
    echostr = crypt.encrypt(b"5927782489442352469")
    sealed = {"msg_signature": crypt.signature(timestamp, nonce, echostr), "timestamp": timestamp, "nonce": nonce,
              "echostr": echostr}
    plain = {"signature": callback_signature(TOKEN, timestamp, nonce), "timestamp": timestamp, "nonce": nonce,
             "echostr": "hello-wechat"}
    async with aiohttp.ClientSession() as http:
        async with http.get(f"{wired.base}/v1/wechat/callback", params=sealed) as response:
            assert (response.status, await response.text()) == (200, "5927782489442352469")
        async with http.get(f"{wired.base}/v1/wechat/callback", params=plain) as response:
            assert (response.status, await response.text()) == (200, "hello-wechat")
