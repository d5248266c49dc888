"""The Alibaba Cloud SMS adapter against the bundled fake gateway over real HTTP on 127.0.0.1."""

from __future__ import annotations

import asyncio
import hashlib
import json
import sys
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import pydantic
import pytest
from aiohttp import web

from channels.acs3 import EMPTY_SHA256, signed_request
from channels.base import Channel, ChannelContext, Message, Outcome, Recipient
from channels.sms import create as create_sms
from channels.sms.aliyun import (
    API_VERSION,
    RECEIPT_ACK,
    AliyunSmsChannel,
    AliyunSmsConfig,
    PushFormatError,
    Uplink,
    parse_receipts,
    parse_uplink,
)
from notifier.fakes.aliyun_sms import RunningAliyunSms, start_aliyun_sms

REPO = Path(__file__).resolve().parents[2]
AK, SK = "LTAI-test-key", "test-secret-of-the-fake"
SIGN = "长治市人民政府"
TEMPLATES = {"SMS_100": ["content"], "SMS_200": ["content"], "SMS_300": ["content", "title", "dept", "link"],
             "SMS_900": ["code"]}
PHONES = ["+8613800000001", "+8613900000002", "+8615000000003"]

ChannelFactory = Callable[..., AliyunSmsChannel]


@dataclass
class Inbox:
    """A local receiver of Aliyun's pushes: answers each POST with the scripted statuses, then the ack."""

    url: str
    bodies: list[bytes] = field(default_factory=list)
    statuses: list[int] = field(default_factory=list)
    arrived: asyncio.Condition = field(default_factory=asyncio.Condition)

    async def wait(self, count: int, timeout: float = 5.0) -> None:
        async with asyncio.timeout(timeout), self.arrived:
            await self.arrived.wait_for(lambda: len(self.bodies) >= count)


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    session = aiohttp.ClientSession()
    yield session
    await session.close()


@pytest.fixture
async def inbox() -> AsyncIterator[Inbox]:
    box = Inbox(url="")

    async def take(request: web.Request) -> web.StreamResponse:
        body = await request.read()
        async with box.arrived:
            box.bodies.append(body)
            box.arrived.notify_all()
        if box.statuses:
            return web.Response(status=box.statuses.pop(0))
        return web.json_response(RECEIPT_ACK)

    app = web.Application()
    app.router.add_post("/{tail:.*}", take)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    box.url = f"http://127.0.0.1:{port}/v1/receipts/sms/aliyun?token=t"
    yield box
    await runner.cleanup()


@pytest.fixture
async def gateway() -> AsyncIterator[RunningAliyunSms]:
    running = await start_aliyun_sms(access_key_id=AK, access_key_secret=SK, templates=TEMPLATES,
                                     sign_names=[SIGN], hang_seconds=5.0, push_retry_delays=(0.05, 0.05, 0.05),
                                     late_receipt_delay=0.3)
    yield running
    await running.stop()


@pytest.fixture
def channel(http: aiohttp.ClientSession, gateway: RunningAliyunSms) -> ChannelFactory:
    """Yields `create(**config)`: an adapter pointed at the fake with valid credentials unless overridden."""

    def create(**overrides: Any) -> AliyunSmsChannel:
        config: dict[str, Any] = {
            "provider": "aliyun", "endpoint": gateway.url, "sign_name": SIGN, "template_code": "SMS_100",
            "receipt_token": "r" * 32, "access_key_id": AK, "access_key_secret": SK,
            "verification_template_code": "SMS_900", "timeout": 2.0,
        }
        config.update(overrides)
        built = create_sms(config, ChannelContext(http=http, public_url="http://127.0.0.1:8080"))
        assert isinstance(built, AliyunSmsChannel)
        return built

    return create


def message(**overrides: Any) -> Message:
    values: dict[str, Any] = {
        "alert_id": "alt_1", "topic": "env.heavy-pollution", "msg_type": "alert", "severity": "severe",
        "urgency": "immediate", "level": "orange", "locale": "zh-CN", "headline": "重污染天气橙色预警",
        "text": "长治市发布重污染天气橙色预警，请减少户外活动。", "url": "http://127.0.0.1:8080/disclosures/alt_1",
        "fields": {"department": "市生态环境局"},
    }
    values.update(overrides)
    return Message(**values)


def recipients(*phones: str) -> list[Recipient]:
    return [Recipient(delivery_id=f"dlv_{i}", subscriber_id=f"sub_{i}", address=phone)
            for i, phone in enumerate(phones or PHONES)]


# --- sending -------------------------------------------------------------------------------------------------


async def test_accepted_send_gives_every_recipient_the_biz_id(channel: ChannelFactory,
                                                              gateway: RunningAliyunSms) -> None:
    """One SendSms for the batch; every recipient is ACCEPTED (not delivered) with the request's BizId."""
    sms = channel()
    assert isinstance(sms, Channel) and sms.confirms_by_receipt and sms.one_request_per_batch
    results = await sms.send(message(), recipients())
    assert len(gateway.sent) == 1
    assert {r.delivery_id for r in results} == {"dlv_0", "dlv_1", "dlv_2"}
    assert {(r.outcome, r.provider_message_id) for r in results} == {(Outcome.ACCEPTED, gateway.sent[0].biz_id)}
    assert gateway.sent[0].biz_id.endswith("^0")


async def test_numbers_go_as_national_digits(channel: ChannelFactory, gateway: RunningAliyunSms) -> None:
    """PhoneNumbers is the comma-joined 11-digit national form of the +86 numbers."""
    await channel().send(message(), recipients())
    assert gateway.sent[0].wire_params["PhoneNumbers"] == "13800000001,13900000002,15000000003"


async def test_template_param_carries_the_configured_attributes(channel: ChannelFactory,
                                                                gateway: RunningAliyunSms) -> None:
    """TemplateParam is readable UTF-8 JSON filling each variable from its configured message attribute."""
    sms = channel(template_code="SMS_300",
                  template_params={"content": "text", "title": "headline", "dept": "department", "link": "url"})
    await sms.send(message(), recipients())
    sent = gateway.sent[0]
    assert json.loads(sent.wire_params["TemplateParam"]) == {
        "content": message().text, "title": "重污染天气橙色预警", "dept": "市生态环境局",
        "link": "http://127.0.0.1:8080/disclosures/alt_1"}
    assert "重污染" in sent.wire_params["TemplateParam"]  # ensure_ascii=False


async def test_parameters_may_go_in_the_query(channel: ChannelFactory, gateway: RunningAliyunSms) -> None:
    """With params_in = "query" (the official SDK's way) the fake verifies the signed query string too."""
    results = await channel(params_in="query").send(message(), recipients())
    assert {r.outcome for r in results} == {Outcome.ACCEPTED}
    assert gateway.sent[0].sign_name == SIGN and gateway.sent[0].params == {"content": message().text}


async def test_topic_template_overrides_the_default(channel: ChannelFactory, gateway: RunningAliyunSms) -> None:
    """A topic listed under `templates` is sent with its own TemplateCode."""
    sms = channel(templates={"env.heavy-pollution": "SMS_200"})
    await sms.send(message(), recipients())
    await sms.send(message(topic="transit.fare-change"), recipients())
    assert [s.template_code for s in gateway.sent] == ["SMS_200", "SMS_100"]


async def test_out_id_names_the_request(channel: ChannelFactory, gateway: RunningAliyunSms) -> None:
    """OutId is the delivery id of a lone recipient and a short digest for a batch."""
    sms = channel()
    await sms.send(message(), recipients(PHONES[0]))
    await sms.send(message(), recipients())
    assert gateway.sent[0].out_id == "dlv_0"
    assert gateway.sent[1].out_id is not None and len(gateway.sent[1].out_id) < 256


async def test_non_mainland_number_is_refused_alone(channel: ChannelFactory, gateway: RunningAliyunSms) -> None:
    """A number that is not a mainland mobile fails on its own; the rest of the batch goes out."""
    results = {r.delivery_id: r for r in await channel().send(message(), recipients(PHONES[0], "+85291234567"))}
    assert results["dlv_1"].outcome is Outcome.PERMANENT
    assert results["dlv_0"].outcome is Outcome.ACCEPTED
    assert gateway.sent[0].numbers == ("13800000001",)


async def test_wrong_secret_is_refused_by_the_gateway(channel: ChannelFactory, gateway: RunningAliyunSms) -> None:
    """The fake recomputes the signature: a wrong AccessKeySecret is SignatureDoesNotMatch, a permanent error."""
    results = await channel(access_key_secret="not-the-secret").send(message(), recipients())
    assert {r.outcome for r in results} == {Outcome.PERMANENT}
    assert results[0].error == "HTTP 400 SignatureDoesNotMatch"
    assert gateway.sent == [] and gateway.counts["refused:SignatureDoesNotMatch"] == 1


async def test_unknown_access_key_is_permanent(channel: ChannelFactory) -> None:
    """An AccessKeyId the gateway does not know is InvalidAccessKeyId.NotFound (HTTP 404), a permanent error."""
    results = await channel(access_key_id="LTAI-unknown").send(message(), recipients())
    assert [r.error for r in results] == ["HTTP 404 InvalidAccessKeyId.NotFound"] * 3
    assert {r.outcome for r in results} == {Outcome.PERMANENT}


async def test_throttling_is_transient_with_a_hint(channel: ChannelFactory, gateway: RunningAliyunSms) -> None:
    """Minute-level flow control on one number fails the request transiently, retry after a minute."""
    gateway.script(PHONES[1], "throttle")
    results = await channel().send(message(), recipients())
    assert {(r.outcome, r.retry_after) for r in results} == {(Outcome.TRANSIENT, 60.0)}
    assert (await channel().send(message(), recipients()))[0].outcome is Outcome.ACCEPTED


async def test_daily_flow_control_is_permanent(channel: ChannelFactory, gateway: RunningAliyunSms) -> None:
    """Day-level flow control will not lift within the retry window: final, so the fallback channel goes."""
    gateway.script_requests("throttle_day")
    results = await channel().send(message(), recipients())
    assert {r.outcome for r in results} == {Outcome.PERMANENT}
    assert results[0].error is not None and "isv.BUSINESS_LIMIT_CONTROL" in results[0].error


async def test_5xx_is_transient(channel: ChannelFactory, gateway: RunningAliyunSms) -> None:
    """HTTP 503 from the gateway is a transient failure of the whole batch."""
    gateway.script(PHONES[0], "5xx")
    results = await channel().send(message(), recipients())
    assert {(r.outcome, r.error) for r in results} == {(Outcome.TRANSIENT, "HTTP 503 ServiceUnavailable")}


async def test_system_error_is_transient(channel: ChannelFactory, gateway: RunningAliyunSms) -> None:
    """isp.SYSTEM_ERROR is Aliyun's own hiccup: retried."""
    gateway.script_requests("system_error")
    results = await channel().send(message(), recipients())
    assert {(r.outcome, r.error) for r in results} == {(Outcome.TRANSIENT, "isp.SYSTEM_ERROR")}


async def test_timeout_is_transient(channel: ChannelFactory, gateway: RunningAliyunSms) -> None:
    """A gateway that does not answer within the configured timeout is a transient failure."""
    gateway.script(PHONES[2], "timeout")
    results = await channel(timeout=0.3).send(message(), recipients())
    assert {(r.outcome, r.error) for r in results} == {(Outcome.TRANSIENT, "timeout")}


async def test_unknown_template_is_permanent(channel: ChannelFactory, gateway: RunningAliyunSms) -> None:
    """A template code the account does not have is isv.SMS_TEMPLATE_ILLEGAL: final for the batch."""
    results = await channel(template_code="SMS_404").send(message(), recipients())
    assert {(r.outcome, r.error) for r in results} == {(Outcome.PERMANENT, "isv.SMS_TEMPLATE_ILLEGAL")}


async def test_scripted_permanent_number_fails_its_request(channel: ChannelFactory,
                                                           gateway: RunningAliyunSms) -> None:
    """Aliyun answers per request: an illegal number makes the whole batch PERMANENT with the code."""
    gateway.script(PHONES[0], "permanent")
    results = await channel().send(message(), recipients())
    assert {(r.outcome, r.error) for r in results} == {(Outcome.PERMANENT, "isv.MOBILE_NUMBER_ILLEGAL")}


async def test_batch_limit_is_1000(http: aiohttp.ClientSession, gateway: RunningAliyunSms) -> None:
    """The fake takes 1000 numbers in one SendSms and refuses 1001 with isv.MOBILE_COUNT_OVER_LIMIT."""
    config = AliyunSmsConfig.model_validate({
        "endpoint": gateway.url, "sign_name": SIGN, "template_code": "SMS_100", "receipt_token": "r" * 32,
        "access_key_id": AK, "access_key_secret": SK})
    codes = []
    for count in (1000, 1001):
        numbers = ",".join(f"139{i:08d}" for i in range(count))
        params = {"PhoneNumbers": numbers, "SignName": SIGN, "TemplateCode": "SMS_100",
                  "TemplateParam": '{"content":"x"}'}
        url, headers, body = signed_request(config, "SendSms", params, version=API_VERSION)
        async with http.post(url, data=body, headers=headers) as response:
            codes.append((response.status, (await response.json())["Code"]))
    assert codes == [(200, "OK"), (200, "isv.MOBILE_COUNT_OVER_LIMIT")]


def test_config_caps_the_batch_at_1000() -> None:
    """max_batch above SendSms's 1000 numbers is a configuration error."""
    with pytest.raises(pydantic.ValidationError):
        AliyunSmsConfig.model_validate({"sign_name": SIGN, "template_code": "SMS_1", "receipt_token": "r" * 32,
                                        "access_key_id": AK, "access_key_secret": SK, "max_batch": 1001})


async def test_verification_code_uses_its_template(channel: ChannelFactory, gateway: RunningAliyunSms) -> None:
    """send_verification sends the verification template with TemplateParam {"code": …} to one number."""
    result = await channel().send_verification(PHONES[0], "493817")
    assert result.outcome is Outcome.ACCEPTED and result.provider_message_id == gateway.sent[0].biz_id
    assert (gateway.sent[0].template_code, dict(gateway.sent[0].params)) == ("SMS_900", {"code": "493817"})


# --- receipts and replies ------------------------------------------------------------------------------------

DOC_SAMPLE = [{"phone_number": "1381111****", "send_time": "2017-01-01 00:00:00",
               "report_time": "2017-01-01 00:00:00", "success": True, "err_code": "DELIVERED",
               "err_msg": "用户接收成功", "sms_size": "1", "biz_id": "12345********", "out_id": "67890**"}]


def test_parse_receipts_reads_the_documented_sample() -> None:
    """The SmsReport sample from the docs (masked number) parses; report_time is read as Beijing time."""
    [receipt] = parse_receipts(json.dumps(DOC_SAMPLE, ensure_ascii=False).encode())
    assert (receipt.provider_message_id, receipt.delivered, receipt.error) == ("12345********", True, None)
    assert receipt.occurred_at == 1483200000.0  # 2017-01-01 00:00:00 +08:00
    assert receipt.address is None  # a masked number matches nobody


def test_parse_receipts_reads_failures_and_real_numbers() -> None:
    """A failed report gives delivered=False with its code and the number in E.164; extra fields are allowed."""
    body = [{**DOC_SAMPLE[0], "phone_number": "13800000001", "success": False, "err_code": "UNDELIV",
             "err_msg": "失败", "biz_id": "900^0", "template_code": "SMS_100"}]
    [receipt] = parse_receipts(json.dumps(body).encode())
    assert (receipt.delivered, receipt.error, receipt.address) == (False, "UNDELIV", "+8613800000001")


def test_repeated_receipt_has_the_same_key() -> None:
    """Aliyun may push a report twice: both copies carry one key, with no trace of the number in it (the store
    tells numbers of one batch apart by a keyed digest of `address`)."""
    body = json.dumps([{**DOC_SAMPLE[0], "phone_number": "13800000001", "biz_id": "900^0"}] * 2).encode()
    first, second = parse_receipts(body)
    other = parse_receipts(body.replace(b"13800000001", b"13800000002"))[0]
    assert first == second
    assert (first.key, first.address) != (other.key, other.address)
    assert "13800000001" not in first.key and first.key == other.key


def test_parse_receipts_refuses_garbage_without_echoing_it() -> None:
    """A body that is not an SmsReport array is PushFormatError naming fields, never values."""
    with pytest.raises(PushFormatError) as caught:
        parse_receipts(b'[{"phone_number": "13800000001", "success": "perhaps"}]')
    assert "13800000001" not in str(caught.value)
    with pytest.raises(PushFormatError):
        parse_receipts(b"not json")


@pytest.mark.parametrize(("field", "value"), [("biz_id", ""), ("report_time", 20170101), ("err_code", None)])
def test_a_report_whose_field_is_not_aliyuns_is_refused_by_its_name(field: str, value: object) -> None:
    """An empty BizId (no message to match), or a time or code that is not text: PushFormatError naming the field;
    nothing of the push is taken."""
    body = [{**DOC_SAMPLE[0], "phone_number": "13800000001"}, {**DOC_SAMPLE[0], field: value}]
    with pytest.raises(PushFormatError, match=f"1.{field}"):
        parse_receipts(json.dumps(body).encode())


async def test_fake_pushes_receipts_to_the_callback(channel: ChannelFactory, gateway: RunningAliyunSms,
                                                    inbox: Inbox) -> None:
    """After an accepted send the fake POSTs an SmsReport array that parses into one delivered receipt each."""
    gateway.configure(receipt_url=inbox.url)
    await channel().send(message(), recipients())
    await inbox.wait(1)
    receipts = parse_receipts(inbox.bodies[0])
    assert {(r.address, r.delivered, r.provider_message_id) for r in receipts} == {
        (phone, True, gateway.sent[0].biz_id) for phone in PHONES}


async def test_scripted_receipt_failure_and_silence(channel: ChannelFactory, gateway: RunningAliyunSms,
                                                    inbox: Inbox) -> None:
    """receipt_fail reports a failure; no_receipt never reports."""
    gateway.configure(receipt_url=inbox.url)
    gateway.script(PHONES[0], "receipt_fail")
    gateway.script(PHONES[1], "no_receipt")
    await channel().send(message(), recipients())
    await gateway.drain()
    receipts = [r for body in inbox.bodies for r in parse_receipts(body)]
    assert {(r.address, r.delivered, r.error) for r in receipts} == {
        (PHONES[0], False, "UNDELIV"), (PHONES[2], True, None)}


async def test_late_receipt_comes_in_a_later_push(channel: ChannelFactory, gateway: RunningAliyunSms,
                                                  inbox: Inbox) -> None:
    """late_receipt holds one number's report back for `late_receipt_delay`, after the others."""
    gateway.configure(receipt_url=inbox.url)
    gateway.script(PHONES[0], "late_receipt")
    await channel().send(message(), recipients())
    await inbox.wait(2)
    assert [{r.address for r in parse_receipts(body)} for body in inbox.bodies] == [set(PHONES[1:]), {PHONES[0]}]


async def test_receipt_push_is_retried_until_acknowledged(channel: ChannelFactory, gateway: RunningAliyunSms,
                                                          inbox: Inbox) -> None:
    """A callback answering 500 gets the same push again, as Aliyun retries."""
    gateway.configure(receipt_url=inbox.url)
    inbox.statuses = [500]
    await channel().send(message(), recipients(PHONES[0]))
    await gateway.drain()
    assert len(inbox.bodies) == 2 and inbox.bodies[0] == inbox.bodies[1]
    assert [a.accepted for a in gateway.push_attempts] == [False, True]


def test_parse_uplink_reads_a_td_reply() -> None:
    """An SmsUp "TD" reply becomes an Uplink from the E.164 number; both documented shapes are read."""
    newer = [{"phone_number": "13800000001", "content": "TD", "send_time": "2017-09-01 00:00:00",
              "dest_code": "1234", "sequence_id": "1234567890"}]
    older = [{"phone_number": "13800000001", "send_time": "20170901000000", "content": "TD", "sign_name": "签名",
              "dest_code": "1234", "sequence_id": 1234567890}]
    expected = Uplink("+8613800000001", "TD", 1504195200.0, "1234567890")
    assert parse_uplink(json.dumps(newer).encode()) == parse_uplink(json.dumps(older).encode()) == [expected]


async def test_fake_pushes_uplink_replies(gateway: RunningAliyunSms, inbox: Inbox) -> None:
    """push_uplink POSTs an SmsUp array to the uplink URL that parse_uplink reads back."""
    gateway.configure(uplink_url=inbox.url)
    assert await gateway.push_uplink(PHONES[0], "退订")
    [reply] = parse_uplink(inbox.bodies[0])
    assert (reply.phone, reply.content) == (PHONES[0], "退订")


async def test_fake_runs_as_a_process(http: aiohttp.ClientSession) -> None:
    """`python -m notifier.fakes.aliyun_sms` prints READY and verifies signed SendSms requests."""
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "notifier.fakes.aliyun_sms", "--port", "0", "--access-key-id", AK,
        "--access-key-secret", SK, cwd=REPO, stdout=asyncio.subprocess.PIPE)
    try:
        assert proc.stdout is not None
        line = (await asyncio.wait_for(proc.stdout.readline(), 10)).decode().split()
        assert line[0] == "READY"
        sms = create_sms({"provider": "aliyun", "endpoint": line[1], "sign_name": SIGN, "template_code": "SMS_1",
                          "receipt_token": "r" * 32, "access_key_id": AK, "access_key_secret": SK},
                         ChannelContext(http=http, public_url="http://127.0.0.1:8080"))
        assert (await sms.send(message(), recipients()))[0].outcome is Outcome.ACCEPTED
        async with http.get(f"{line[1]}/_stats") as response:
            assert (await response.json())["numbers"] == 3
    finally:
        proc.terminate()
        await proc.wait()


def test_receipt_ack_is_the_documented_answer() -> None:
    """Both pushes expect HTTP 200 with {"code": 0, "msg": "接收成功"}."""
    assert RECEIPT_ACK == {"code": 0, "msg": "接收成功"}
    assert hashlib.sha256(b"").hexdigest() == EMPTY_SHA256
