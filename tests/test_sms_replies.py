"""Replying TD (or 退订) to an alert SMS stops SMS to that number, through the provider's uplink push."""

from __future__ import annotations

from collections.abc import AsyncIterator

import aiohttp
import pytest
from aiohttp.test_utils import TestServer

from notifier.fakes.aliyun_sms import RunningAliyunSms, start_aliyun_sms
from notifier.models import AlertIn
from notifier.publish import publish_alert
from notifier.receipts import is_stop_reply
from notifier.service import Service
from notifier.subscribers import create_subscriber
from notifier.web import create_app
from subscriptions.models import SubscriberIn
from tests.conftest import SettingsFactory

pytestmark = pytest.mark.both_backends  # SQLite and PostgreSQL (tests/conftest.py)

PHONE = "+8613800000555"
TOKEN = "reply-token-000000001"


@pytest.fixture
async def sms_service(make_settings: SettingsFactory) -> AsyncIterator[tuple[Service, RunningAliyunSms, str]]:
    """A service whose Aliyun SMS fake pushes replies to the service's uplink URL."""
    fake = await start_aliyun_sms(access_key_id="ak", access_key_secret="sk")
    settings = make_settings(channels={"sms": {
        "provider": "aliyun", "endpoint": fake.url, "sign_name": "长治市人民政府", "template_code": "SMS_100001",
        "receipt_token": TOKEN, "access_key_id": "ak", "access_key_secret": "sk"}})
    service = Service(settings)
    await service.open()
    server = TestServer(create_app(settings, service=service), host="127.0.0.1")
    await server.start_server()
    base = str(server.make_url("")).rstrip("/")
    fake.configure(uplink_url=f"{base}/v1/uplink/sms/aliyun?token={TOKEN}")
    try:
        yield service, fake, base
    finally:
        await server.close()
        await service.close()
        await fake.stop()


async def _subscriber(service: Service) -> None:
    body = SubscriberIn.model_validate({"contacts": {"sms": PHONE}, "region": "140402", "subscriptions": [
        {"topic": "env.heavy-pollution", "channels": ["sms"]}]})
    await create_subscriber(service.store, body, allow_private_webhooks=False)


async def test_a_td_reply_stops_sms_to_that_number(sms_service: tuple[Service, RunningAliyunSms, str]) -> None:
    """After the subscriber replies TD, the next alert creates no SMS delivery for them."""
    service, fake, _ = sms_service
    await _subscriber(service)
    assert await fake.push_uplink(PHONE, "TD")
    alert, _ = await publish_alert(service.store, AlertIn(topic="env.heavy-pollution", headline="预警"), None)
    rows, _ = await service.store.list_deliveries(alert.id, 10, None)
    assert rows == [] and alert.targeted == 1


async def test_an_ordinary_reply_changes_nothing(sms_service: tuple[Service, RunningAliyunSms, str]) -> None:
    """A reply that is not an opt-out keeps the number subscribed."""
    service, fake, _ = sms_service
    await _subscriber(service)
    assert await fake.push_uplink(PHONE, "收到，谢谢")
    alert, _ = await publish_alert(service.store, AlertIn(topic="env.heavy-pollution", headline="预警"), None)
    rows, _ = await service.store.list_deliveries(alert.id, 10, None)
    assert [r.channel for r in rows] == ["sms"]


async def test_an_uplink_without_the_token_is_refused(sms_service: tuple[Service, RunningAliyunSms, str]) -> None:
    """A forged reply push without the configured token gets 401."""
    _, _, base = sms_service
    async with aiohttp.ClientSession() as http:
        async with http.post(f"{base}/v1/uplink/sms/aliyun", json=[{"phone_number": "13800000555",
                                                                     "content": "TD"}]) as response:
            assert response.status == 401


@pytest.mark.parametrize("text", ["TD", "td", " T ", "R", "退订", "ＴＤ", "TD。"])
def test_opt_out_words_are_recognised(text: str) -> None:
    """The carrier opt-out words are understood however they are typed."""
    assert is_stop_reply(text)


@pytest.mark.parametrize("text", ["好的", "TDX", "请问什么时候结束", ""])
def test_other_replies_are_not_opt_outs(text: str) -> None:
    """Ordinary replies are not mistaken for opt-outs."""
    assert not is_stop_reply(text)
