"""The Tencent Cloud SMS adapter against the bundled fake Tencent SMS API, over real HTTP on 127.0.0.1."""

from __future__ import annotations

import asyncio
import contextlib
import json
import sys
import time
from collections import defaultdict
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime
from typing import Any

import aiohttp
import pydantic
import pytest
from aiohttp import web

import channels.sms
from channels.base import ChannelContext, Message, Outcome, Recipient
from channels.callbacks import CallbackFormatError
from channels.errors import PermanentDeliveryError, TransientDeliveryError
from channels.sms.tencent import RECEIPT_ACK, TencentSmsChannel, parse_receipts, parse_uplink, read_answer
from channels.tc3 import authorization
from notifier.fakes.tencent_sms import RunningTencentSms, start_tencent_sms
from notifier.receipts import is_stop_reply

SECRET_ID = "AKIDtestTencentSmsSecretId"
SECRET_KEY = "test-tencent-sms-secret-key"
APP_ID = "1400000001"
TOKEN = "receipt-token-0123456789abcdef"
TEMPLATES = ("1000001", "1000002", "1000009")
RECEIPTS_PATH = "/v1/receipts/sms/tencent"
UPLINK_PATH = "/v1/uplink/sms/tencent"


ChannelFactory = Callable[..., TencentSmsChannel]


def phone(n: int) -> str:
    return f"+86138{n:08d}"


def recipients(*numbers: str) -> list[Recipient]:
    return [Recipient(delivery_id=f"dlv_{i}", subscriber_id=f"sub_{i}", address=number)
            for i, number in enumerate(numbers)]


def message(**overrides: Any) -> Message:
    values: dict[str, Any] = {
        "alert_id": "alt_1",
        "topic": "env.heavy-pollution",
        "msg_type": "alert",
        "severity": "severe",
        "urgency": "immediate",
        "level": "orange",
        "locale": "zh-CN",
        "headline": "重污染天气橙色预警",
        "text": "长治市发布重污染天气橙色预警，请减少户外活动。",
        "url": "http://127.0.0.1:8080/disclosures/alt_1",
        "fields": {"department": "市环保局"},
        "sent_at": 1_700_000_000.0,
    }
    values.update(overrides)
    return Message(**values)


class Callbacks:
    """A local receiver standing in for our callback endpoints: checks the token, keeps bodies, answers the ack."""

    def __init__(self) -> None:
        self.bodies: dict[str, list[bytes]] = defaultdict(list)
        self.arrived = asyncio.Event()
        self.url = ""

    async def handle(self, request: web.Request) -> web.StreamResponse:
        if request.query.get("token") != TOKEN:
            raise web.HTTPUnauthorized()
        self.bodies[request.path].append(await request.read())
        self.arrived.set()
        return web.json_response(RECEIPT_ACK)

    async def wait_for(self, path: str, count: int, timeout: float = 5.0) -> list[bytes]:
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(timeout):
                while len(self.bodies[path]) < count:
                    self.arrived.clear()
                    await self.arrived.wait()
        return self.bodies[path]


@pytest.fixture
async def callbacks() -> AsyncIterator[Callbacks]:
    state = Callbacks()
    app = web.Application()
    app.router.add_post(RECEIPTS_PATH, state.handle)
    app.router.add_post(UPLINK_PATH, state.handle)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    host, port = runner.addresses[0][:2]
    state.url = f"http://{host}:{port}"
    yield state
    await runner.cleanup()


@pytest.fixture
async def fake(callbacks: Callbacks) -> AsyncIterator[RunningTencentSms]:
    running = await start_tencent_sms(
        secret_id=SECRET_ID, secret_key=SECRET_KEY, sdk_app_id=APP_ID, templates=TEMPLATES,
        receipt_url=f"{callbacks.url}{RECEIPTS_PATH}?token={TOKEN}",
        uplink_url=f"{callbacks.url}{UPLINK_PATH}?token={TOKEN}",
        receipt_delay=0.01, late_delay=0.3, hang=5.0,
    )
    yield running
    await running.stop()


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    session = aiohttp.ClientSession()
    yield session
    await session.close()


@pytest.fixture
def make_channel(http: aiohttp.ClientSession, fake: RunningTencentSms) -> ChannelFactory:
    """Yields `create(**config)`: a Tencent SMS channel pointed at the fake, built through the SMS dispatch."""

    def create(**overrides: Any) -> TencentSmsChannel:
        config = {"provider": "tencent", "endpoint": fake.url, "sign_name": "长治市环保局", "template_code": "1000001",
                  "receipt_token": TOKEN, "secret_id": SECRET_ID, "secret_key": SECRET_KEY, "sdk_app_id": APP_ID,
                  "timeout": 2.0, **overrides}
        channel = channels.sms.create(config, ChannelContext(http=http, public_url="http://127.0.0.1:8080"))
        assert isinstance(channel, TencentSmsChannel)
        return channel

    return create


# --- signing ----------------------------------------------------------------------------------------------------

async def test_fake_refuses_a_stale_timestamp(fake: RunningTencentSms, http: aiohttp.ClientSession) -> None:
    """A correctly signed request more than five minutes old gets AuthFailure.SignatureExpire."""
    body = b'{"PhoneNumberSet":["+8613800000001"]}'
    host = fake.url.removeprefix("http://")
    timestamp = int(time.time()) - 600
    signed = {"Content-Type": "application/json; charset=utf-8", "Host": host}
    headers = {**signed, "X-TC-Action": "SendSms", "X-TC-Version": "2021-01-11", "X-TC-Region": "ap-guangzhou",
               "X-TC-Timestamp": str(timestamp),
               "Authorization": authorization(SECRET_ID, SECRET_KEY, service="sms", timestamp=timestamp,
                                              headers=signed, payload=body)}
    async with http.post(fake.url + "/", data=body, headers=headers) as response:
        answer = await response.json()
    assert answer["Response"]["Error"]["Code"] == "AuthFailure.SignatureExpire"


# --- sending ----------------------------------------------------------------------------------------------------

async def test_three_numbers_are_accepted_with_their_own_serial_numbers(make_channel: ChannelFactory,
                                                                        fake: RunningTencentSms) -> None:
    """One request, three ACCEPTED results, each with the SerialNo of its own number (matched by PhoneNumber)."""
    batch = recipients(phone(1), phone(2), phone(3))
    results = await make_channel().send(message(), batch)
    serial_of = {sms.phone: sms.serial_no for sms in fake.sent}
    by_delivery = {r.delivery_id: r for r in results}
    assert fake.requests == 1
    assert all(r.outcome is Outcome.ACCEPTED for r in results)
    assert len({r.provider_message_id for r in results}) == 3
    assert all(by_delivery[r.delivery_id].provider_message_id == serial_of[r.address] for r in batch)


async def test_an_invalid_number_fails_alone(make_channel: ChannelFactory) -> None:
    """A number the API calls incorrect is PERMANENT; the rest of the batch is ACCEPTED."""
    results = await make_channel().send(message(), recipients(phone(1), "+8610000000000", phone(3)))
    outcomes = {r.delivery_id: (r.outcome, r.error) for r in results}
    assert outcomes["dlv_1"] == (Outcome.PERMANENT, "Tencent SMS InvalidParameterValue.IncorrectPhoneNumber")
    assert outcomes["dlv_0"][0] is outcomes["dlv_2"][0] is Outcome.ACCEPTED


def test_a_malformed_status_costs_only_its_own_number() -> None:
    """The answer's statuses are read as a set; one entry that is not a status leaves only that number without one
    (retried later), the others keep theirs, and numbers are matched as E.164 however Tencent writes them."""
    good = [{"SerialNo": f"2433:{i:028d}", "PhoneNumber": f"+86138000000{i:02d}", "Code": "Ok"} for i in range(3)]
    written = {"SerialNo": "2433:9", "PhoneNumber": "8613800000099", "Code": "Ok"}
    answer = json.dumps({"Response": {"SendStatusSet": [*good, {"Code": 5}, written], "RequestId": "r"}}).encode()
    statuses = read_answer(200, answer)
    assert sorted(statuses) == ["+8613800000000", "+8613800000001", "+8613800000002", "+8613800000099"]
    assert statuses["+8613800000099"].serial_no == "2433:9"


async def test_wrong_secret_fails_the_whole_batch(make_channel: ChannelFactory, fake: RunningTencentSms) -> None:
    """A request signed with the wrong SecretKey is refused as a whole: PERMANENT, nothing sent."""
    with pytest.raises(PermanentDeliveryError) as caught:
        await make_channel(secret_key="not-the-key").send(message(), recipients(phone(1), phone(2)))
    assert caught.value.code == "AuthFailure.SignatureFailure"
    assert fake.sent == []


@pytest.mark.parametrize("failure", ["RequestLimitExceeded", "InternalError.Timeout", "5xx", "timeout"])
async def test_request_failures_are_transient(make_channel: ChannelFactory, fake: RunningTencentSms,
                                              failure: str) -> None:
    """API throttling, internal errors, HTTP 5xx and timeouts fail the batch as TRANSIENT."""
    fake.script_request(failure)
    with pytest.raises(TransientDeliveryError):
        await make_channel(timeout=0.3).send(message(), recipients(phone(1), phone(2)))


async def test_api_throttling_asks_for_a_short_wait(make_channel: ChannelFactory, fake: RunningTencentSms) -> None:
    """RequestLimitExceeded carries a retry_after for the dispatcher."""
    fake.script_request("RequestLimitExceeded")
    with pytest.raises(TransientDeliveryError) as caught:
        await make_channel().send(message(), recipients(phone(1)))
    assert caught.value.retry_after == 1.0


async def test_thirty_second_cap_is_transient_for_that_number(make_channel: ChannelFactory,
                                                              fake: RunningTencentSms) -> None:
    """A number over its 30-second cap is retried after 30 s; the others are accepted."""
    fake.script(phone(2), "throttle")
    results = {r.delivery_id: r for r in await make_channel().send(message(), recipients(phone(1), phone(2)))}
    assert (results["dlv_1"].outcome, results["dlv_1"].retry_after) == (Outcome.TRANSIENT, 30.0)
    assert results["dlv_0"].outcome is Outcome.ACCEPTED


async def test_daily_cap_is_permanent_for_this_alert(make_channel: ChannelFactory, fake: RunningTencentSms) -> None:
    """A number over its daily cap fails at once, so that fallback can reach the person elsewhere."""
    fake.script(phone(1), "LimitExceeded.PhoneNumberDailyLimit")
    [result] = await make_channel().send(message(), recipients(phone(1)))
    assert (result.outcome, result.error) == (Outcome.PERMANENT, "Tencent SMS LimitExceeded.PhoneNumberDailyLimit")


async def test_blacklisted_number_disables_the_contact(make_channel: ChannelFactory, fake: RunningTencentSms) -> None:
    """A number on the unsubscribe/do-not-disturb list is PERMANENT and its contact disabled."""
    fake.script(phone(1), "FailedOperation.PhoneNumberInBlacklist")
    [result] = await make_channel().send(message(), recipients(phone(1)))
    assert (result.outcome, result.disable_contact) == (Outcome.PERMANENT, True)


async def test_two_hundred_numbers_go_in_one_request(make_channel: ChannelFactory, fake: RunningTencentSms) -> None:
    """200 numbers, the API's limit, are one SendSms request and all accepted."""
    channel = make_channel()
    results = await channel.send(message(), recipients(*(phone(n) for n in range(200))))
    assert channel.max_batch == 200
    assert fake.requests == 1
    assert sum(r.outcome is Outcome.ACCEPTED for r in results) == 200


async def test_more_than_two_hundred_numbers_are_refused(make_channel: ChannelFactory) -> None:
    """A 201-number request is refused by the API as a whole (the dispatcher never makes one)."""
    with pytest.raises(PermanentDeliveryError) as caught:
        await make_channel().send(message(), recipients(*(phone(n) for n in range(201))))
    assert caught.value.code == "LimitExceeded.PhoneNumberCountLimit"


def test_batch_size_over_two_hundred_is_a_configuration_error(make_channel: ChannelFactory) -> None:
    """max_batch cannot be configured above the API's 200."""
    with pytest.raises(pydantic.ValidationError):
        make_channel(max_batch=201)


async def test_topic_template_overrides_the_default(make_channel: ChannelFactory, fake: RunningTencentSms) -> None:
    """A topic listed in `templates` uses its TemplateId; other topics use `template_code`."""
    channel = make_channel(templates={"env.heavy-pollution": "1000002"})
    await channel.send(message(), recipients(phone(1)))
    await channel.send(message(topic="transit.fare-change"), recipients(phone(2)))
    assert [sms.template_id for sms in fake.sent] == ["1000002", "1000001"]


async def test_template_params_follow_the_configured_order(make_channel: ChannelFactory,
                                                           fake: RunningTencentSms) -> None:
    """TemplateParamSet holds the configured message attributes, in order."""
    await make_channel(template_params=["headline", "department", "level"]).send(message(), recipients(phone(1)))
    assert fake.sent[0].params == ("重污染天气橙色预警", "市环保局", "orange")


async def test_session_context_carries_no_personal_data(make_channel: ChannelFactory, fake: RunningTencentSms) -> None:
    """SessionContext is our reference (alert and first delivery), not a number."""
    await make_channel().send(message(), recipients(phone(1), phone(2)))
    assert fake.sent[0].session_context == "alt_1:dlv_0"


async def test_unapproved_template_fails_the_batch(make_channel: ChannelFactory) -> None:
    """A TemplateId the account does not have is PERMANENT for the whole batch."""
    with pytest.raises(PermanentDeliveryError) as caught:
        await make_channel(template_code="4040404").send(message(), recipients(phone(1)))
    assert caught.value.code == "FailedOperation.TemplateIncorrectOrUnapproved"


async def test_the_same_number_twice_gets_one_sms(make_channel: ChannelFactory, fake: RunningTencentSms) -> None:
    """Two deliveries to one number share one SMS and its SerialNo."""
    results = await make_channel().send(message(), recipients(phone(1), phone(1)))
    assert len(fake.sent) == 1
    assert {r.provider_message_id for r in results} == {fake.sent[0].serial_no}


async def test_international_numbers_are_refused_before_sending(make_channel: ChannelFactory,
                                                                fake: RunningTencentSms) -> None:
    """A non-+86 number needs an international template: PERMANENT without a request."""
    [result] = await make_channel().send(message(), recipients("+14155550100"))
    assert result.outcome is Outcome.PERMANENT
    assert fake.requests == 0


async def test_verification_code_uses_its_template(make_channel: ChannelFactory, fake: RunningTencentSms) -> None:
    """send_verification sends the code as the only parameter of verification_template_code."""
    result = await make_channel(verification_template_code="1000009").send_verification(phone(1), "123456")
    assert result.outcome is Outcome.ACCEPTED
    assert (fake.sent[0].template_id, fake.sent[0].params) == ("1000009", ("123456",))


async def test_verification_without_its_template_is_refused(make_channel: ChannelFactory) -> None:
    """Without verification_template_code no code is sent."""
    result = await make_channel().send_verification(phone(1), "123456")
    assert result.outcome is Outcome.PERMANENT


# --- callbacks --------------------------------------------------------------------------------------------------

DOC_SAMPLE = (b'[{"user_receive_time": "2015-10-17 08:03:04", "nationcode": "86", "mobile": "13800000001", '
              b'"report_status": "SUCCESS", "errmsg": "DELIVRD", "description": "\xe7\x94\xa8\xe6\x88\xb7\xe7\x9f\xad'
              b'\xe4\xbf\xa1\xe9\x80\x81\xe8\xbe\xbe\xe6\x88\x90\xe5\x8a\x9f", "sid": "xxxxxxx"}, '
              b'{"user_receive_time": "2015-10-17 08:03:05", "nationcode": "86", "mobile": "13800000002", '
              b'"report_status": "FAIL", "errmsg": "MK:0001", "description": "x", "sid": "yyyyyyy", "ext": ""}]')


def test_parse_receipts_reads_the_documented_sample() -> None:
    """SUCCESS is delivered, FAIL is not and keeps its code; times are China time; keys are stable."""
    success, failure = parse_receipts(DOC_SAMPLE)
    assert (success.provider_message_id, success.delivered, success.error, success.address) == (
        "xxxxxxx", True, None, None)
    assert (failure.provider_message_id, failure.delivered, failure.error) == ("yyyyyyy", False, "MK:0001")
    assert success.occurred_at == datetime(2015, 10, 17, 0, 3, 4, tzinfo=UTC).timestamp()
    assert success.key == "xxxxxxx:SUCCESS:2015-10-17 08:03:04"
    assert [r.key for r in parse_receipts(DOC_SAMPLE)] == [success.key, failure.key]


def test_parse_receipts_refuses_a_malformed_body_without_quoting_it() -> None:
    """A report without sid is a format error whose text carries no number."""
    body = json.dumps([{"mobile": "13800000001", "report_status": "SUCCESS"}]).encode()
    with pytest.raises(CallbackFormatError) as caught:
        parse_receipts(body)
    assert "13800000001" not in str(caught.value)


async def test_fake_pushes_status_callbacks(make_channel: ChannelFactory, fake: RunningTencentSms,
                                            callbacks: Callbacks) -> None:
    """Accepted numbers get a status callback that parses into receipts for their SerialNos; the ack is taken."""
    fake.script(phone(2), "receipt_fail")
    results = await make_channel().send(message(), recipients(phone(1), phone(2)))
    [body] = await callbacks.wait_for(RECEIPTS_PATH, 1)
    delivered = {r.provider_message_id: r.delivered for r in parse_receipts(body)}
    serial = {r.delivery_id: r.provider_message_id for r in results}
    await fake.settle()
    assert delivered == {serial["dlv_0"]: True, serial["dlv_1"]: False}
    assert [p.status for p in fake.pushed] == [200]


async def test_late_and_missing_receipts(make_channel: ChannelFactory, fake: RunningTencentSms,
                                         callbacks: Callbacks) -> None:
    """A late receipt comes in a later callback; a number scripted with no receipt never gets one."""
    fake.script(phone(2), "late_receipt")
    fake.script(phone(3), "no_receipt")
    results = await make_channel().send(message(), recipients(phone(1), phone(2), phone(3)))
    bodies = await callbacks.wait_for(RECEIPTS_PATH, 2)
    serial = {r.delivery_id: r.provider_message_id for r in results}
    assert [[r.provider_message_id for r in parse_receipts(b)] for b in bodies] == [[serial["dlv_0"]],
                                                                                   [serial["dlv_1"]]]


def test_parse_uplink_reads_an_unsubscribe_reply() -> None:
    """The documented reply object becomes an Uplink with an E.164 number, and "TD" is a stop reply."""
    body = json.dumps({"extend": "", "mobile": "13800000001", "nationcode": "86", "sign": "长治市环保局",
                       "text": "TD", "time": 1457336869}).encode()
    [uplink] = parse_uplink(body)
    assert (uplink.phone, uplink.content, uplink.received_at) == ("+8613800000001", "TD", 1457336869.0)
    assert is_stop_reply(uplink.content)


async def test_fake_pushes_replies(fake: RunningTencentSms, callbacks: Callbacks) -> None:
    """push_uplink delivers a reply that parse_uplink reads back."""
    assert await fake.push_uplink(phone(7), "退订") == 200
    [body] = await callbacks.wait_for(UPLINK_PATH, 1)
    assert [(u.phone, u.content) for u in parse_uplink(body)] == [(phone(7), "退订")]


async def test_fake_runs_as_a_process() -> None:
    """`python -m notifier.fakes.tencent_sms --port 0` prints READY with its URL and stops on SIGTERM."""
    process = await asyncio.create_subprocess_exec(sys.executable, "-m", "notifier.fakes.tencent_sms", "--port", "0",
                                                   stdout=asyncio.subprocess.PIPE)
    try:
        assert process.stdout is not None
        line = await asyncio.wait_for(process.stdout.readline(), timeout=20)
        assert line.decode().startswith("READY http://127.0.0.1:")
    finally:
        process.terminate()
        await process.wait()
