"""The Alibaba Cloud voice adapter (SingleCallByTts) against the bundled fake over real HTTP on 127.0.0.1, its
VoiceReport parsing, and the shared voice rules (redial policy, spoken text)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Callable
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from channels.base import ChannelContext, Message, Outcome, Recipient
from channels.voice import create as create_voice
from channels.voice.aliyun import AliyunVoiceChannel, classify, parse_receipts
from channels.voice.common import CallPolicy, fit_spoken
from channels.voice.speech import integer_words, spoken
from notifier.fakes.aliyun_voice import FakeAliyunVoice, start_aliyun_voice

AK, SK = "LTAI-voice-test", "voice-secret-of-the-fake"
LANDLINE, MOBILE = "+863552021234", "+8613800000001"
ChannelFactory = Callable[..., AliyunVoiceChannel]


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    session = aiohttp.ClientSession()
    yield session
    await session.close()


@pytest.fixture
async def fake() -> AsyncIterator[FakeAliyunVoice]:
    running = await start_aliyun_voice(access_key_id=AK, access_key_secret=SK, tts_codes=["TTS_1", "TTS_2"],
                                       hang=5.0)
    yield running
    await running.stop()


@pytest.fixture
def channel(http: aiohttp.ClientSession, fake: FakeAliyunVoice) -> ChannelFactory:
    """Yields `create(**config)`: an adapter on the fake with valid credentials unless overridden."""

    def create(**overrides: Any) -> AliyunVoiceChannel:
        config: dict[str, Any] = {"provider": "aliyun", "endpoint": fake.url, "tts_code": "TTS_1",
                                  "called_show_number": "03552000000", "access_key_id": AK,
                                  "access_key_secret": SK, "receipt_token": "r" * 32, "timeout": 2.0, **overrides}
        built = create_voice(config, ChannelContext(http=http, public_url="http://127.0.0.1:8080"))
        assert isinstance(built, AliyunVoiceChannel)
        return built

    return create


def message(text: str = "您好，这里是市环保局。现发布重污染天气橙色预警。", **overrides: Any) -> Message:
    values: dict[str, Any] = {"alert_id": "a1", "topic": "env.heavy-pollution", "msg_type": "alert",
                              "severity": "severe", "urgency": "immediate", "level": "orange", "locale": "zh-CN",
                              "headline": "重污染天气橙色预警", "text": text, "url": "http://127.0.0.1/d/a1",
                              "fields": {"level": "橙色预警", "department": "市环保局"}, **overrides}
    return Message(**values)


def to(*numbers: str) -> list[Recipient]:
    return [Recipient(delivery_id=f"{i:032x}", subscriber_id=f"s{i}", address=n) for i, n in enumerate(numbers, 1)]


# --- sending -------------------------------------------------------------------------------------------------

async def test_a_landline_is_called_with_its_area_code(channel: ChannelFactory, fake: FakeAliyunVoice) -> None:
    """A fixed line goes out as 0 + area code + number, is ACCEPTED with the CallId, and one call is placed."""
    [result] = await channel().send(message(), to(LANDLINE))
    assert result.outcome is Outcome.ACCEPTED
    [call] = fake.calls
    assert result.provider_message_id == call.call_id
    assert call.number == LANDLINE
    assert call.params == {"content": "您好，这里是市环保局。现发布重污染天气橙色预警。"}
    assert (call.play_times, call.reference) == (2, f"{1:032x}"[:15])


async def test_each_recipient_gets_a_call_of_its_own(channel: ChannelFactory, fake: FakeAliyunVoice) -> None:
    """A batch of three numbers makes three calls, each with its own CallId."""
    results = await channel().send(message(), to(LANDLINE, MOBILE, "+8613900000002"))
    assert [r.outcome for r in results] == [Outcome.ACCEPTED] * 3
    assert len({r.provider_message_id for r in results}) == 3
    assert sorted(c.number for c in fake.calls) == sorted([LANDLINE, MOBILE, "+8613900000002"])


async def test_topic_template_and_variables_come_from_config(channel: ChannelFactory,
                                                             fake: FakeAliyunVoice) -> None:
    """`templates` picks the topic's TtsCode; `template_params` maps variables to spoken values."""
    await channel(templates={"env.heavy-pollution": "TTS_2"},
                  template_params={"content": "text", "level": "level"}).send(message(), to(MOBILE))
    assert fake.calls[0].template == "TTS_2"
    assert fake.calls[0].params["level"] == "橙色预警"


async def test_long_text_is_fitted_to_the_provider_budget(channel: ChannelFactory, fake: FakeAliyunVoice) -> None:
    """A spoken text past 240 characters is cut at a sentence end and the call still goes out."""
    text = "请减少户外活动。" * 40
    [result] = await channel().send(message(text), to(MOBILE))
    assert result.outcome is Outcome.ACCEPTED
    sent = fake.calls[0].params["content"]
    assert len(sent) <= 240 and sent.endswith("。")


async def test_a_foreign_number_is_refused_before_any_request(channel: ChannelFactory,
                                                              fake: FakeAliyunVoice) -> None:
    """A number outside the mainland is PERMANENT at once; the gateway sees no request."""
    [result] = await channel().send(message(), to("+85221234567"))
    assert result.outcome is Outcome.PERMANENT
    assert fake.requests == 0


async def test_a_second_call_within_a_minute_is_flow_controlled(channel: ChannelFactory) -> None:
    """The gateway allows one call a minute to a number: the second is TRANSIENT, retry after 60 s."""
    voice = channel()
    await voice.send(message(), to(MOBILE))
    [again] = await voice.send(message(), to(MOBILE))
    assert (again.outcome, again.retry_after) == (Outcome.TRANSIENT, 60.0)
    assert again.error == "isv.BUSINESS_LIMIT_CONTROL: minute limit"


@pytest.mark.parametrize(("behaviour", "outcome"), [("refuse", Outcome.PERMANENT), ("5xx", Outcome.TRANSIENT),
                                                    ("throttle", Outcome.TRANSIENT)])
async def test_scripted_refusals_are_classified(channel: ChannelFactory, fake: FakeAliyunVoice, behaviour: str,
                                                outcome: Outcome) -> None:
    """An illegal number is permanent; a 503 and flow control are transient."""
    fake.script(MOBILE, behaviour)
    [result] = await channel().send(message(), to(MOBILE))
    assert result.outcome is outcome
    assert not fake.calls


async def test_a_timeout_is_transient(channel: ChannelFactory, fake: FakeAliyunVoice) -> None:
    """A gateway that does not answer within the timeout makes the call TRANSIENT."""
    fake.script(MOBILE, "timeout")
    [result] = await channel(timeout=0.3).send(message(), to(MOBILE))
    assert (result.outcome, result.error) == (Outcome.TRANSIENT, "timeout")


async def test_a_wrong_secret_is_refused_by_the_signature_check(channel: ChannelFactory,
                                                                fake: FakeAliyunVoice) -> None:
    """The fake recomputes the signature: a wrong AccessKeySecret is PERMANENT (SignatureDoesNotMatch)."""
    [result] = await channel(access_key_secret="wrong").send(message(), to(MOBILE))
    assert result.outcome is Outcome.PERMANENT
    assert result.error == "HTTP 400 SignatureDoesNotMatch"
    assert not fake.calls


@pytest.mark.parametrize(("code", "message_text", "outcome", "retry_after"), [
    ("isv.VOICE_CALL_PERIOD_ERROR", "", Outcome.TRANSIENT, 1800.0),
    ("isv.BUSINESS_LIMIT_CONTROL", "触发小时级流控Permits:5", Outcome.TRANSIENT, 3600.0),
    ("isv.BUSINESS_LIMIT_CONTROL", "触发天级流控Permits:20", Outcome.PERMANENT, None),
    ("isv.COMPLAINT_REJECT", "", Outcome.PERMANENT, None),
    ("isp.SYSTEM_ERROR", "", Outcome.TRANSIENT, None),
])
def test_answers_are_classified_in_one_place(code: str, message_text: str, outcome: Outcome,
                                             retry_after: float | None) -> None:
    """Time-of-day and minute/hour limits wait; a daily limit and a complaint block are final."""
    verdict = classify((200, {"Code": code, "Message": message_text}))
    assert (verdict.outcome, verdict.retry_after) == (outcome, retry_after)


# --- receipts ------------------------------------------------------------------------------------------------

def report(status: str, smart: str | None = None, call_id: str = "116012354148^100000001") -> bytes:
    entry: dict[str, Any] = {"status_code": status, "callee": "1390000****", "duration": "10",
                             "voice_type": "voice", "end_time": "2026-11-27 20:01:10", "call_id": call_id,
                             "status_msg": "执行完成", "out_id": "dlv1"}
    if smart is not None:
        entry["smart_status_code"] = smart
    return json.dumps([entry], ensure_ascii=False).encode()


@pytest.mark.parametrize(("status", "smart", "delivered", "retry"), [
    ("200000", "ANSWERED", True, False),
    ("200001", None, True, False),
    ("200003", "NO_ANSWER", False, True),
    ("200002", None, False, True),
    ("200010", "POWERED_OFF", False, True),
    ("200005", "CALL_REJECTED", False, False),
    ("200005", None, False, True),
    ("200004", "INVALID_NUMBER", False, False),
    ("200011", None, False, False),
    ("123456", None, False, True),
])
def test_call_results_become_receipts(status: str, smart: str | None, delivered: bool, retry: bool) -> None:
    """Answered (even briefly) is delivered; no answer, busy, switched off are retried; refused or dead numbers
    are final; an unknown code is retried."""
    [receipt] = parse_receipts(report(status, smart))
    assert (receipt.delivered, receipt.retry) == (delivered, retry)
    assert receipt.provider_message_id == "116012354148^100000001"
    assert (receipt.error is None) is delivered
    assert receipt.occurred_at is not None


def test_intermediate_states_make_no_receipt() -> None:
    """Ringing, calling and "answered" progress states (VoiceCallReport) are no final result."""
    assert parse_receipts(report("200201")) == []


def test_repeats_share_a_key_and_results_differ() -> None:
    """The same report twice has one key (the store drops the repeat); another result of the call another."""
    first, again, other = (parse_receipts(report(s))[0] for s in ("200003", "200003", "200000"))
    assert first.key == again.key != other.key


@pytest.mark.parametrize("body", [b"not json", b'[{"status_code": "200000"}]', b'"x"'])
def test_a_body_that_is_not_a_voice_report_is_refused(body: bytes) -> None:
    """Garbage, or an entry without a call id, is a ValueError naming fields, never values."""
    with pytest.raises(ValueError):
        parse_receipts(body)


async def test_the_fake_pushes_the_call_result(channel: ChannelFactory, fake: FakeAliyunVoice) -> None:
    """An unanswered call's VoiceReport reaches the receipt URL and parses to a retry receipt for that CallId."""
    bodies: list[bytes] = []

    async def take(request: web.Request) -> web.StreamResponse:
        bodies.append(await request.read())
        return web.json_response({"code": 0, "msg": "接收成功"})

    app = web.Application()
    app.router.add_post("/r", take)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    fake.receipt_url = f"http://127.0.0.1:{runner.addresses[0][1]}/r"
    try:
        fake.script(LANDLINE, "no_answer")
        [result] = await channel().send(message(), to(LANDLINE))
        await fake.settle()
    finally:
        await runner.cleanup()
    [receipt] = parse_receipts(bodies[0])
    assert (receipt.provider_message_id, receipt.delivered, receipt.retry) == (result.provider_message_id, False,
                                                                               True)
    assert fake.pushed[0].status == 200


# --- shared voice rules --------------------------------------------------------------------------------------

def test_the_adapter_declares_its_redial_bounds(channel: ChannelFactory) -> None:
    """max_calls defaults to 3 and the interval to Aliyun's one minute; the config can change both."""
    assert (channel().max_calls, channel().min_call_interval) == (3, 60.0)
    assert (channel(max_calls=2, call_interval=120).max_calls, channel(call_interval=120).min_call_interval) == (
        2, 120.0)


@pytest.mark.parametrize(("calls_made", "last", "now", "expires", "expected"), [
    (1, 1000.0, 1010.0, None, 1060.0),  # at least the interval after the last call
    (1, 1000.0, 1100.0, None, 1100.0),  # not before now
    (3, 1000.0, 1100.0, None, None),  # max_calls made
    (2, 1000.0, 1010.0, 1050.0, None),  # the alert expires first
])
def test_the_next_call_is_spaced_bounded_and_before_expiry(calls_made: int, last: float, now: float,
                                                           expires: float | None, expected: float | None) -> None:
    """A redial comes at least `min_interval` after the last call, only while calls and the alert remain."""
    assert CallPolicy(3, 60.0).next_call_at(calls_made, last, now, expires) == expected


@pytest.mark.parametrize(("value", "words"), [(0, "零"), (10, "十"), (12, "十二"), (105, "一百零五"),
                                              (200, "二百"), (1010, "一千零一十"), (120000, "十二万")])
def test_numbers_are_said_in_chinese_words(value: int, words: str) -> None:
    """Whole numbers read as a listener expects them."""
    assert integer_words(value) == words


def test_spoken_text_has_no_link_symbol_or_abbreviation() -> None:
    """Links vanish, PM2.5 and AQI become words, percentages, years, ranges and phone numbers read naturally."""
    text = spoken("详见https://x.gov.cn/a #提示# 空气质量指数（AQI）超过200，PM2.5占30%，2026年，-5~3℃，拨打110、120")
    assert text == ("详见 提示 空气质量指数超过二百，细颗粒物占百分之三十，二零二六年，负五至三摄氏度，"
                    "拨打幺幺零、幺二零")


def test_english_spoken_text_spells_terms_out() -> None:
    """English keeps digits (read well by English voices) and spells terms out."""
    assert spoken("AQI above 200, see www.x.org, 5-7 days", "en") == "air quality index above 200, see 5 to 7 days"


def test_fitting_keeps_whole_sentences() -> None:
    """A text over budget keeps its whole first sentences; one without a sentence end is cut with an ellipsis."""
    assert fit_spoken("第一句。第二句很长很长。", 8) == "第一句。"
    assert fit_spoken("没有句号的很长很长的一段话", 8) == "没有句号的很……"


async def test_concurrent_calls_do_not_share_a_nonce(channel: ChannelFactory, fake: FakeAliyunVoice) -> None:
    """Twenty calls at once all pass the gateway's nonce check (each request is signed afresh)."""
    numbers = [f"+86139{i:08d}" for i in range(20)]
    results = await asyncio.gather(channel().send(message(), to(*numbers)))
    assert [r.outcome for r in results[0]] == [Outcome.ACCEPTED] * 20
