"""WeChat channel against the bundled fake WeChat API over real HTTP on 127.0.0.1, plus the callback helpers."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from channels.base import ChannelContext, Message, Outcome, Recipient
from channels.errors import PermanentDeliveryError
from channels.wechat import (
    ECHO_OK,
    WechatChannel,
    WechatConfig,
    build_body,
    callback_signature,
    classify,
    create,
    fit,
    parse_event,
    receipt_from_event,
    shared_body,
    verify_signature,
)
from notifier.fakes.wechat import RunningWechat, start_wechat

APP_ID, APP_SECRET, TOKEN = "wx0123456789abcdef", "app-secret-for-tests", "callback-token"
TEMPLATE = "tmpl-default-0001"
OPENID = "oAbCdEfGhIjKlMnOpQrStUvWx001"

FakeFactory = Callable[..., Awaitable[RunningWechat]]
ChannelFactory = Callable[..., WechatChannel]

SAMPLE_FINISH = b"""<xml>
<ToUserName><![CDATA[gh_7f083739789a]]></ToUserName>
<FromUserName><![CDATA[oia2TjuEGTNoeX76QEjQNrcURxG8]]></FromUserName>
<CreateTime>1395658920</CreateTime>
<MsgType><![CDATA[event]]></MsgType>
<Event><![CDATA[TEMPLATESENDJOBFINISH]]></Event>
<MsgID>200163836</MsgID>
<Status><![CDATA[%s]]></Status>
</xml>"""


def openid(n: int) -> str:
    return f"oAbCdEfGhIjKlMnOpQrStUvW{n:04d}"


def message(**overrides: Any) -> Message:
    values: dict[str, Any] = {
        "alert_id": "a" * 32, "topic": "env.heavy-pollution", "msg_type": "alert", "severity": "severe",
        "urgency": "immediate", "level": "orange", "locale": "zh-CN", "headline": "重污染天气橙色预警",
        "text": "重污染天气橙色预警", "url": "http://127.0.0.1:8080/disclosures/1",
        "fields": {"headline": "重污染天气橙色预警", "department": "市生态环境局", "time": "2024年1月5日 08:00",
                   "level": "橙色预警", "detail": "预计未来三天空气质量重度污染", "remark": "涉及区域：全市。"},
    }
    values.update(overrides)
    return Message(**values)


def recipient(n: int = 1, delivery_id: str | None = None) -> Recipient:
    return Recipient(delivery_id=delivery_id or f"{n:032x}", subscriber_id=f"s{n}", address=openid(n))


@pytest.fixture
async def make_fake() -> AsyncIterator[FakeFactory]:
    """Yields `create(**kw)`: a fake WeChat API on a free loopback port, stopped after the test."""
    fakes: list[RunningWechat] = []

    async def create_fake(**kwargs: Any) -> RunningWechat:
        kwargs = {"app_id": APP_ID, "app_secret": APP_SECRET, "token": TOKEN, **kwargs}
        fake = await start_wechat(**kwargs)
        fakes.append(fake)
        return fake

    yield create_fake
    for fake in fakes:
        await fake.stop()


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    session = aiohttp.ClientSession()
    yield session
    await session.close()


@pytest.fixture
def make_channel(http: aiohttp.ClientSession) -> ChannelFactory:
    """Yields `create(fake, **config)`: a WeChat channel whose endpoint is the fake."""

    def create_channel(fake: RunningWechat, **config: Any) -> WechatChannel:
        config = {"endpoint": fake.url, "app_id": APP_ID, "app_secret": APP_SECRET, "token": TOKEN,
                  "template_id": TEMPLATE, **config}
        return create(config, ChannelContext(http=http, public_url="http://127.0.0.1:8080"))

    return create_channel


class CallbackReceiver:
    """The service's server URL, as far as these tests need it: records pushes and answers ECHO_OK."""

    def __init__(self) -> None:
        self.requests: list[tuple[dict[str, str], bytes]] = []
        self.arrived = asyncio.Event()
        self.url = ""

    async def handle(self, request: web.Request) -> web.Response:
        self.requests.append((dict(request.query), await request.read()))
        self.arrived.set()
        return web.Response(text=ECHO_OK)


@pytest.fixture
async def receiver() -> AsyncIterator[CallbackReceiver]:
    state = CallbackReceiver()
    app = web.Application()
    app.router.add_post("/v1/wechat/callback", state.handle)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    host, port = runner.addresses[0][:2]
    state.url = f"http://{host}:{port}/v1/wechat/callback"
    yield state
    await runner.cleanup()


# ---- send --------------------------------------------------------------------------------------------------------

async def test_send_is_accepted_with_msgid_and_mapped_template_data(make_fake: FakeFactory,
                                                                    make_channel: ChannelFactory) -> None:
    """A send is ACCEPTED with the msgid, and the fields reach the template's keywords."""
    fake = await make_fake()
    [result] = await make_channel(fake).send(message(), [recipient(1)])
    [sent] = fake.sent
    assert result.outcome is Outcome.ACCEPTED
    assert result.provider_message_id == str(sent.msgid)
    assert sent.template_id == TEMPLATE and sent.url == "http://127.0.0.1:8080/disclosures/1"
    assert sent.data == {"thing1": {"value": "重污染天气橙色预警"}, "thing2": {"value": "市生态环境局"},
                         "time3": {"value": "2024年1月5日 08:00"}, "thing4": {"value": "橙色预警"},
                         "thing5": {"value": "预计未来三天空气质量重度污染"}}


async def test_topic_template_and_field_map_come_from_config(make_fake: FakeFactory,
                                                              make_channel: ChannelFactory) -> None:
    """The topic's template id and the configured keyword names are used."""
    fake = await make_fake()
    channel = make_channel(fake, templates={"env.heavy-pollution": "tmpl-pollution"},
                           field_map={"headline": "first", "remark": "remark"})
    await channel.send(message(), [recipient(1)])
    assert fake.sent[0].template_id == "tmpl-pollution"
    assert set(fake.sent[0].data) == {"first", "remark"}


async def test_client_msg_id_is_the_delivery_id(make_fake: FakeFactory, make_channel: ChannelFactory) -> None:
    """client_msg_id carries the delivery id, so WeChat drops a repeat."""
    fake = await make_fake()
    await make_channel(fake).send(message(), [recipient(7)])
    assert fake.sent[0].client_msg_id == recipient(7).delivery_id


async def test_each_recipient_of_a_batch_gets_its_own_openid_and_id(make_fake: FakeFactory,
                                                                    make_channel: ChannelFactory) -> None:
    """The body is encoded once a batch: every recipient's request still names that recipient and delivery only,
    with the message's template data and link unchanged."""
    fake = await make_fake()
    batch = [recipient(n) for n in range(1, 6)]
    results = await make_channel(fake).send(message(), batch)
    assert all(r.outcome is Outcome.ACCEPTED for r in results)
    assert sorted((s.openid, s.client_msg_id) for s in fake.sent) == [(r.address, r.delivery_id) for r in batch]
    assert len({(s.template_id, s.url, str(s.data)) for s in fake.sent}) == 1


def test_body_is_the_json_of_the_template_send_request() -> None:
    """The spliced body is exactly the documented template/send object, publisher text with quotes and
    backslashes included, and the same bytes on every retry of a delivery."""
    config = WechatConfig(app_id=APP_ID, app_secret=APP_SECRET, token=TOKEN, template_id=TEMPLATE)
    sent = message(fields={"headline": '"红色"\\预警', "department": "市应急局"})
    body = build_body(shared_body(config, sent), recipient(3))
    assert json.loads(body) == {"touser": openid(3), "template_id": TEMPLATE,
                                "data": {"thing1": {"value": '"红色"\\预警'}, "thing2": {"value": "市应急局"}},
                                "client_msg_id": recipient(3).delivery_id, "url": sent.url}
    assert build_body(shared_body(config, sent), recipient(3)) == body


def test_a_bug_while_sending_is_not_called_a_connection_error() -> None:
    """A transport failure is a connection error, a timeout a timeout, anything else an internal error (all
    retried): the operator is not sent looking at the network for a bug."""
    assert classify("d", aiohttp.ClientConnectionError()).error == "connection error (ClientConnectionError)"
    assert classify("d", TimeoutError()).error == "timeout"
    bug = classify("d", KeyError("data"))
    assert bug.outcome is Outcome.TRANSIENT and bug.error == "internal error (KeyError)"


async def test_repeated_delivery_is_accepted_without_msgid(make_fake: FakeFactory,
                                                           make_channel: ChannelFactory) -> None:
    """A resend of an already-sent delivery (45065) is ACCEPTED, not sent twice."""
    fake = await make_fake()
    channel = make_channel(fake)
    await channel.send(message(), [recipient(1)])
    [again] = await channel.send(message(), [recipient(1)])
    assert again.outcome is Outcome.ACCEPTED and again.provider_message_id is None
    assert len(fake.sent) == 1


async def test_long_values_are_cut_to_the_keyword_limit(make_fake: FakeFactory,
                                                        make_channel: ChannelFactory) -> None:
    """A headline over 20 characters is cut (not refused with 47003), whole characters only."""
    fake = await make_fake()
    headline = "关于发布重污染天气橙色预警并启动二级应急响应的通知😷😷"
    [result] = await make_channel(fake).send(message(fields={"headline": headline}), [recipient(1)])
    assert result.outcome is Outcome.ACCEPTED
    value = fake.sent[0].data["thing1"]["value"]
    assert value.endswith("…") and len(value) <= 20 and headline.startswith(value[:-1])


def test_fit_never_splits_a_surrogate_pair() -> None:
    """Cutting counts an emoji as two UTF-16 units and never leaves half of one."""
    assert fit("ab😷😷", 4) == "ab…"
    assert fit("short", 20) == "short"


async def test_token_is_fetched_once_for_concurrent_sends(make_fake: FakeFactory,
                                                          make_channel: ChannelFactory) -> None:
    """Many concurrent sends share one token fetch."""
    fake = await make_fake()
    channel = make_channel(fake)
    batches = [[recipient(n) for n in range(start, start + 10)] for start in (1, 11, 21)]
    results = await asyncio.gather(*(channel.send(message(), batch) for batch in batches))
    assert all(r.outcome is Outcome.ACCEPTED for batch in results for r in batch)
    assert fake.token_fetches == 1


async def test_expired_token_is_refreshed_once_and_sends_succeed(make_fake: FakeFactory,
                                                                 make_channel: ChannelFactory) -> None:
    """After the token expires (42001), exactly one refresh happens and every send of the batch succeeds."""
    fake = await make_fake()
    channel = make_channel(fake)
    await channel.send(message(), [recipient(100)])
    fake.expire_tokens()
    results = await channel.send(message(), [recipient(n) for n in range(1, 21)])
    assert [r.outcome for r in results] == [Outcome.ACCEPTED] * 20
    assert fake.token_fetches == 2


async def test_refused_stable_token_is_force_refreshed_once(make_fake: FakeFactory,
                                                            make_channel: ChannelFactory) -> None:
    """When stable_token keeps returning a token the API refuses (40001), one forced refresh replaces it."""
    fake = await make_fake()
    channel = make_channel(fake)
    await channel.send(message(), [recipient(100)])
    fake.revoke_stable_token()
    results = await channel.send(message(), [recipient(n) for n in range(1, 6)])
    assert [r.outcome for r in results] == [Outcome.ACCEPTED] * 5
    assert fake.token_fetches == 3  # the first, the normal one that returned the same token, the forced one
    assert len(fake.forced) == 1


async def test_classic_token_is_used_when_stable_token_is_missing(make_fake: FakeFactory,
                                                                  make_channel: ChannelFactory) -> None:
    """An API host without stable_token (404) falls back to cgi-bin/token."""
    fake = await make_fake()
    fake.stable_available = False
    channel = make_channel(fake)
    [result] = await channel.send(message(), [recipient(1)])
    assert result.outcome is Outcome.ACCEPTED
    assert not channel.tokens.uses_stable_token and fake.classic_current is not None


async def test_wrong_secret_fails_the_whole_batch_permanently(make_fake: FakeFactory,
                                                              make_channel: ChannelFactory) -> None:
    """A token refused for bad credentials (40125) fails the batch as a whole, permanently, with the code."""
    fake = await make_fake()
    with pytest.raises(PermanentDeliveryError) as caught:
        await make_channel(fake, app_secret="wrong").send(message(), [recipient(1)])
    assert caught.value.code == "40125"


@pytest.mark.parametrize(("behaviour", "error"), [("not_following", "errcode 43004"),
                                                  ("refused", "errcode 43101")])
async def test_user_not_reachable_is_permanent(make_fake: FakeFactory, make_channel: ChannelFactory,
                                               behaviour: str, error: str) -> None:
    """Not following (43004) or refusing (43101) is final, so the dispatcher falls back."""
    fake = await make_fake()
    fake.script(openid(1), behaviour)
    [result] = await make_channel(fake).send(message(), [recipient(1)])
    assert result.outcome is Outcome.PERMANENT and result.error is not None and result.error.startswith(error)


async def test_unfollow_event_makes_later_sends_permanent(make_fake: FakeFactory,
                                                          make_channel: ChannelFactory) -> None:
    """After an unsubscribe event the openid gets 43004."""
    fake = await make_fake()
    await fake.push_event(openid(1), "unsubscribe")
    [result] = await make_channel(fake).send(message(), [recipient(1)])
    assert result.outcome is Outcome.PERMANENT and result.error == "errcode 43004: not following"


@pytest.mark.parametrize(("behaviour", "error"), [("throttle", "errcode 45009"), ("busy", "errcode -1"),
                                                  ("5xx", "HTTP 503")])
async def test_throttling_busy_and_5xx_are_transient(make_fake: FakeFactory, make_channel: ChannelFactory,
                                                     behaviour: str, error: str) -> None:
    """Quota, system busy and 5xx answers are retried later."""
    fake = await make_fake()
    fake.script(openid(1), behaviour, times=1)
    channel = make_channel(fake)
    [first] = await channel.send(message(), [recipient(1)])
    [second] = await channel.send(message(), [recipient(1)])
    assert first.outcome is Outcome.TRANSIENT and first.error == error
    assert second.outcome is Outcome.ACCEPTED


async def test_minute_quota_hints_a_minute(make_fake: FakeFactory, make_channel: ChannelFactory) -> None:
    """45011 (minute quota) is transient with a 60 s retry hint."""
    fake = await make_fake()
    fake.script(openid(1), "errcode:45011")
    [result] = await make_channel(fake).send(message(), [recipient(1)])
    assert result.outcome is Outcome.TRANSIENT and result.retry_after == 60.0


async def test_timeout_is_transient(make_fake: FakeFactory, make_channel: ChannelFactory) -> None:
    """No answer within the timeout is transient; the other recipients are unaffected."""
    fake = await make_fake()
    fake.script(openid(1), "timeout")
    results = await make_channel(fake, timeout=0.3).send(message(), [recipient(1), recipient(2)])
    assert [(r.outcome, r.error) for r in results] == [(Outcome.TRANSIENT, "timeout"), (Outcome.ACCEPTED, None)]


async def test_unknown_errcode_is_permanent_with_the_code(make_fake: FakeFactory,
                                                          make_channel: ChannelFactory) -> None:
    """An errcode the adapter does not know is final and named in the error."""
    fake = await make_fake()
    fake.script(openid(1), "errcode:48001")
    [result] = await make_channel(fake).send(message(), [recipient(1)])
    assert result.outcome is Outcome.PERMANENT and result.error == "errcode 48001"


async def test_errors_carry_no_openid(make_fake: FakeFactory, make_channel: ChannelFactory) -> None:
    """Result errors name codes, never the recipient's openid."""
    fake = await make_fake()
    fake.script(openid(1), "errcode:40003")
    [result] = await make_channel(fake).send(message(), [recipient(1)])
    assert result.error is not None and openid(1) not in result.error


# ---- callbacks ---------------------------------------------------------------------------------------------------

def test_signature_matches_the_documented_example() -> None:
    """The documented example (Token AAAAA) verifies."""
    assert verify_signature("AAAAA", "f464b24fc39322e44b38aa78f5edd27bd1441696", "1714036504", "1514711492",
                            now=1714036504 + 10)


def test_tampered_signature_is_refused() -> None:
    """A signature for another nonce, or another token, does not verify."""
    assert not verify_signature("AAAAA", "f464b24fc39322e44b38aa78f5edd27bd1441696", "1714036504", "1514711493",
                                now=1714036504)
    assert not verify_signature("BBBBB", "f464b24fc39322e44b38aa78f5edd27bd1441696", "1714036504", "1514711492",
                                now=1714036504)


def test_stale_timestamp_is_refused() -> None:
    """A correctly signed request more than 5 minutes old is refused (replay)."""
    timestamp = "1714036504"
    signature = callback_signature(TOKEN, timestamp, "42")
    assert verify_signature(TOKEN, signature, timestamp, "42", now=1714036504 + 299)
    assert not verify_signature(TOKEN, signature, timestamp, "42", now=1714036504 + 301)


@pytest.mark.parametrize(("status", "delivered"), [("success", True), ("failed:user block", False),
                                                   ("failed: system failed", False)])
def test_template_job_finish_sample_becomes_a_receipt(status: str, delivered: bool) -> None:
    """The documented TEMPLATESENDJOBFINISH sample gives a receipt for MsgID with the status."""
    receipt = receipt_from_event(parse_event(SAMPLE_FINISH % status.encode()))
    assert receipt is not None
    assert (receipt.provider_message_id, receipt.delivered) == ("200163836", delivered)
    assert receipt.error == (None if delivered else status)
    assert receipt.key == f"200163836:{status}" and receipt.occurred_at == 1395658920


def test_msgid_spelled_msgid_is_accepted() -> None:
    """Some pushes spell the tag MsgId; it is read the same."""
    body = SAMPLE_FINISH.replace(b"MsgID", b"MsgId") % b"success"
    receipt = receipt_from_event(parse_event(body))
    assert receipt is not None and receipt.provider_message_id == "200163836"


def test_unsubscribe_event_is_parsed_and_is_no_receipt() -> None:
    """An unsubscribe event names the openid and yields no receipt."""
    event = parse_event(b"<xml><ToUserName><![CDATA[toUser]]></ToUserName><FromUserName><![CDATA[" + OPENID.encode()
                        + b"]]></FromUserName><CreateTime>123456789</CreateTime><MsgType><![CDATA[event]]></MsgType>"
                          b"<Event><![CDATA[unsubscribe]]></Event></xml>")
    assert (event.msg_type, event.event, event.openid, event.create_time) == ("event", "unsubscribe", OPENID,
                                                                              123456789)
    assert receipt_from_event(event) is None
    assert OPENID not in repr(event)


def test_follow_by_qr_code_carries_the_scene() -> None:
    """A subscribe with EventKey qrscene_123123 (and a SCAN by a follower) gives the scene."""
    follow = parse_event(b"<xml><ToUserName><![CDATA[toUser]]></ToUserName><FromUserName><![CDATA[FromUser]]>"
                         b"</FromUserName><CreateTime>123456789</CreateTime><MsgType><![CDATA[event]]></MsgType>"
                         b"<Event><![CDATA[subscribe]]></Event><EventKey><![CDATA[qrscene_123123]]></EventKey>"
                         b"<Ticket><![CDATA[TICKET]]></Ticket></xml>")
    scan = parse_event(b"<xml><FromUserName>FromUser</FromUserName><MsgType>event</MsgType><Event>SCAN</Event>"
                       b"<EventKey>123123</EventKey></xml>")
    assert follow.scene == "123123" and scan.scene == "123123"


@pytest.mark.parametrize("body", [
    b'<?xml version="1.0"?><!DOCTYPE xml [<!ENTITY e "boom">]><xml><MsgType>&e;</MsgType></xml>',
    b'<!DOCTYPE xml SYSTEM "http://127.0.0.1/evil.dtd"><xml><MsgType>event</MsgType></xml>',
])
def test_xml_with_dtd_or_entities_is_refused(body: bytes) -> None:
    """DOCTYPEs and entity declarations are refused before anything is read."""
    with pytest.raises(ValueError, match="refused"):
        parse_event(body)


@pytest.mark.parametrize("body", [b"not xml at all", b"<xml><MsgType>event</xml>", b"", b"<a/>",
                                  b"<xml><Encrypt>abc</Encrypt></xml>", b"<xml>" + b" " * 40_000 + b"</xml>"])
def test_garbage_is_a_value_error(body: bytes) -> None:
    """Malformed, foreign, encrypted-only or oversized bodies raise ValueError."""
    with pytest.raises(ValueError):
        parse_event(body)


async def test_fake_pushes_a_signed_receipt(make_fake: FakeFactory, make_channel: ChannelFactory,
                                            receiver: CallbackReceiver) -> None:
    """After a send the fake pushes a TEMPLATESENDJOBFINISH whose signature verifies and whose MsgID matches."""
    fake = await make_fake(callback_url=receiver.url, receipt_delay=0.01)
    [result] = await make_channel(fake).send(message(), [recipient(1)])
    await asyncio.wait_for(receiver.arrived.wait(), 5)
    [(query, body)] = receiver.requests
    assert verify_signature(TOKEN, query["signature"], query["timestamp"], query["nonce"], now=time.time())
    receipt = receipt_from_event(parse_event(body))
    assert receipt is not None and receipt.delivered
    assert receipt.provider_message_id == result.provider_message_id


async def test_scripted_failed_receipt_is_pushed(make_fake: FakeFactory, make_channel: ChannelFactory,
                                                 receiver: CallbackReceiver) -> None:
    """A `receipt_fail` openid is accepted, then its receipt says failed:user block."""
    fake = await make_fake(callback_url=receiver.url, receipt_delay=0.01)
    fake.script(openid(1), "receipt_fail")
    [result] = await make_channel(fake).send(message(), [recipient(1)])
    await fake.wait_pushes()
    receipt = receipt_from_event(parse_event(receiver.requests[0][1]))
    assert result.outcome is Outcome.ACCEPTED
    assert receipt is not None and not receipt.delivered and receipt.error == "failed:user block"
