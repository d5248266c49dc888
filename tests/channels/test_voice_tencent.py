"""The Tencent Cloud VMS adapter (SendTtsVoice) against the bundled fake over real HTTP on 127.0.0.1, and its
status and failure callbacks."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Callable
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from channels.base import ChannelContext, Message, Outcome, Recipient
from channels.voice import create as create_voice
from channels.voice.tencent import RECEIPT_ACK, TencentVoiceChannel, parse_receipts
from notifier.fakes.tencent_voice import FakeTencentVoice, start_tencent_voice

SECRET_ID, SECRET_KEY, APP = "AKIDvoiceTest", "voice-test-secret-key", "1400000009"
MOBILE = "+8613800000001"
ChannelFactory = Callable[..., TencentVoiceChannel]


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    session = aiohttp.ClientSession()
    yield session
    await session.close()


@pytest.fixture
async def fake() -> AsyncIterator[FakeTencentVoice]:
    running = await start_tencent_voice(secret_id=SECRET_ID, secret_key=SECRET_KEY, sdk_app_id=APP,
                                        templates=["1001", "1002"], hang=5.0)
    yield running
    await running.stop()


@pytest.fixture
def channel(http: aiohttp.ClientSession, fake: FakeTencentVoice) -> ChannelFactory:
    """Yields `create(**config)`: an adapter on the fake with valid credentials unless overridden."""

    def create(**overrides: Any) -> TencentVoiceChannel:
        config: dict[str, Any] = {"provider": "tencent", "endpoint": fake.url, "template_id": "1001",
                                  "sdk_app_id": APP, "secret_id": SECRET_ID, "secret_key": SECRET_KEY,
                                  "receipt_token": "r" * 32, "timeout": 2.0, **overrides}
        built = create_voice(config, ChannelContext(http=http, public_url="http://127.0.0.1:8080"))
        assert isinstance(built, TencentVoiceChannel)
        return built

    return create


def message(text: str = "您好，这里是市应急管理局。现发布暴雨红色预警。") -> Message:
    return Message(alert_id="a1", topic="disaster.weather-warning", msg_type="alert", severity="extreme",
                   urgency="immediate", level="red", locale="zh-CN", headline="暴雨红色预警", text=text,
                   fields={"level": "红色预警", "department": "市应急管理局"})


def to(*numbers: str) -> list[Recipient]:
    return [Recipient(delivery_id=f"{i:032x}", subscriber_id=f"s{i}", address=n) for i, n in enumerate(numbers, 1)]


async def test_a_mobile_is_called_with_the_delivery_as_session_context(channel: ChannelFactory,
                                                                       fake: FakeTencentVoice) -> None:
    """SendTtsVoice carries the E.164 number, the template and the spoken text; the CallId is the provider id."""
    [result] = await channel().send(message(), to(MOBILE))
    assert result.outcome is Outcome.ACCEPTED
    [call] = fake.calls
    assert (call.number, call.template) == (MOBILE, "1001")
    assert call.params == ["您好，这里是市应急管理局。现发布暴雨红色预警。"]
    assert (call.reference, call.play_times, result.provider_message_id) == (f"{1:032x}", 2, call.call_id)


async def test_a_landline_fails_at_once_so_the_next_channel_applies(channel: ChannelFactory,
                                                                    fake: FakeTencentVoice) -> None:
    """Tencent VMS calls mobiles only: a fixed line is PERMANENT without any request."""
    [result] = await channel().send(message(), to("+863552021234"))
    assert result.outcome is Outcome.PERMANENT
    assert "mobiles only" in (result.error or "")
    assert fake.requests == 0


async def test_the_number_frequency_limit_waits_out_its_window(channel: ChannelFactory) -> None:
    """A second call to one number within 30 s is refused by the gateway: TRANSIENT, retry after 300 s."""
    voice = channel()
    await voice.send(message(), to(MOBILE))
    [again] = await voice.send(message(), to(MOBILE))
    assert (again.outcome, again.retry_after) == (Outcome.TRANSIENT, 300.0)
    assert again.error == "Tencent VMS LimitExceeded.DeliveryFrequencyLimit"


@pytest.mark.parametrize(("behaviour", "outcome"), [("refuse", Outcome.PERMANENT), ("5xx", Outcome.TRANSIENT)])
async def test_one_recipients_refusal_is_its_own_result(channel: ChannelFactory, fake: FakeTencentVoice,
                                                        behaviour: str, outcome: Outcome) -> None:
    """A request error is the result of that recipient only; the others are called."""
    fake.script(MOBILE, behaviour)
    results = await channel().send(message(), to(MOBILE, "+8613900000002"))
    assert [r.outcome for r in results] == [outcome, Outcome.ACCEPTED]


async def test_a_wrong_secret_is_refused_by_the_signature_check(channel: ChannelFactory,
                                                                fake: FakeTencentVoice) -> None:
    """The fake recomputes TC3: a wrong SecretKey is PERMANENT (AuthFailure.SignatureFailure)."""
    [result] = await channel(secret_key="wrong").send(message(), to(MOBILE))
    assert (result.outcome, result.error) == (Outcome.PERMANENT, "Tencent VMS AuthFailure.SignatureFailure")


async def test_the_text_is_fitted_to_the_content_limit(channel: ChannelFactory, fake: FakeTencentVoice) -> None:
    """A long spoken text is cut to the 300-character budget at a sentence end, and accepted."""
    [result] = await channel().send(message("请立即转移到安全地带。" * 50), to(MOBILE))
    assert result.outcome is Outcome.ACCEPTED
    assert len(fake.calls[0].params[0]) <= 300


def test_the_adapter_declares_its_redial_bounds(channel: ChannelFactory) -> None:
    """Tencent's default limits (2 calls per 10 minutes) make its interval 300 s; max_calls defaults to 3."""
    assert (channel().max_calls, channel().min_call_interval) == (3, 300.0)


# --- callbacks ----------------------------------------------------------------------------------------------------

def prompt(result: str, callid: str = "c-1") -> dict[str, Any]:
    return {"voiceprompt_callback": {"result": result, "accept_time": "1470197211", "call_from": "",
                                     "callid": callid, "end_calltime": "1470197221", "fee": "1",
                                     "mobile": "13800000001", "nationcode": "86", "start_calltime": "1470197196"}}


def failure(code: int, callid: str = "c-1") -> dict[str, Any]:
    return {"voice_failure_callback": {"call_from": "075583763333", "callid": callid, "failure_code": code,
                                       "failure_reason": "…", "mobile": "13800000001", "nationcode": "86"}}


@pytest.mark.parametrize(("result", "delivered", "retry"), [("0", True, False), ("1", False, True),
                                                            ("2", False, True)])
def test_the_status_callback_says_whether_the_call_was_answered(result: str, delivered: bool, retry: bool) -> None:
    """result 0 answered is delivered; 1 not answered and 2 call failed are retried."""
    [receipt] = parse_receipts(json.dumps(prompt(result)).encode())
    assert (receipt.provider_message_id, receipt.delivered, receipt.retry) == ("c-1", delivered, retry)
    assert receipt.occurred_at == 1470197221.0


@pytest.mark.parametrize(("code", "retry"), [(1, True), (2, True), (5, True), (10, True), (8, False), (7, False),
                                             (99, True)])
def test_the_failure_callback_says_whether_another_call_may_help(code: int, retry: bool) -> None:
    """Switched off, busy, no answer are retried; an empty or suspended number is final; unknown codes retried."""
    [receipt] = parse_receipts(json.dumps(failure(code)).encode())
    assert (receipt.delivered, receipt.retry) == (False, retry)
    assert receipt.error is not None and receipt.error.startswith(f"failure {code}")


def test_both_callbacks_of_one_call_have_their_own_keys() -> None:
    """A status and a failure reason for one call (also pushed as one array) are two receipts, two keys."""
    receipts = parse_receipts(json.dumps([prompt("1"), failure(5)]).encode())
    assert [r.provider_message_id for r in receipts] == ["c-1", "c-1"]
    assert receipts[0].key != receipts[1].key


def test_a_keypress_callback_makes_no_receipt() -> None:
    """Other callbacks at the same URL are taken and ignored."""
    assert parse_receipts(b'{"voicekey_callback": {"callid": "c-1", "keypress": "1"}}') == []


@pytest.mark.parametrize("body", [b"nope", b'{"voiceprompt_callback": {"result": "0"}}', b"42"])
def test_a_body_that_is_not_a_callback_is_refused(body: bytes) -> None:
    """Garbage, or a status without a callid, is a ValueError."""
    with pytest.raises(ValueError):
        parse_receipts(body)


async def test_the_fake_pushes_status_and_reason_of_an_unanswered_call(channel: ChannelFactory,
                                                                       fake: FakeTencentVoice) -> None:
    """A busy number's call comes back as a "not answered" status and a "busy" reason, both for its CallId."""
    bodies: list[bytes] = []

    async def take(request: web.Request) -> web.StreamResponse:
        bodies.append(await request.read())
        return web.json_response(RECEIPT_ACK)

    app = web.Application()
    app.router.add_post("/r", take)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    fake.receipt_url = f"http://127.0.0.1:{runner.addresses[0][1]}/r"
    try:
        fake.script(MOBILE, "busy")
        [result] = await channel().send(message(), to(MOBILE))
        await fake.settle()
    finally:
        await runner.cleanup()
    receipts = [r for body in bodies for r in parse_receipts(body)]
    assert {r.provider_message_id for r in receipts} == {result.provider_message_id}
    assert sorted(r.error or "" for r in receipts) == ["failure 10 busy", "result 1 not answered"]
    assert all(r.retry for r in receipts)
