"""Redialling: a call nobody answered is called again — at most `max_calls` calls, at least the provider's spacing
apart, never after the alert expires — and when no call is left the next channel goes out. Over the fake Aliyun
voice gateway, whose call results come back to the real receipt URL."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime

import pytest
from aiohttp.test_utils import TestServer

from channels.base import Receipt
from notifier.coverage import alert_coverage
from notifier.dispatch import Dispatcher
from notifier.fakes.aliyun_voice import FakeAliyunVoice, start_aliyun_voice
from notifier.fakes.webhook_receiver import RunningReceiver
from notifier.models import AlertIn
from notifier.publish import publish_alert
from notifier.receipts import call_policy
from notifier.service import Service
from notifier.states import DeliveryStatus
from notifier.store.records import DeliveryRow, DeliveryUpdate
from notifier.subscribers import create_subscriber
from notifier.web import create_app
from subscriptions.models import SubscriberIn
from tests.conftest import SettingsFactory

pytestmark = pytest.mark.both_backends

AK, SK = "LTAI-redial", "redial-secret"
TOKEN = "voice-receipt-token-0123456789abcdef"
LANDLINE = "+863552021234"
SPACING = 61.0  # a little more than Aliyun's minimum spacing of 60 s between two calls to one number


@dataclass
class Skewed:
    """The dispatcher's clock: real time plus a skew the test moves forward instead of waiting a minute."""

    skew: float = 0.0

    def __call__(self) -> float:
        return time.time() + self.skew


@dataclass
class Voiced:
    service: Service
    fake: FakeAliyunVoice
    clock: Skewed = field(default_factory=Skewed)
    dispatcher: Dispatcher | None = None

    async def work(self) -> None:
        """Send whatever is due by the test's clock, then wait for the call results to be pushed back."""
        assert self.dispatcher is not None
        await self.dispatcher.drain(timeout=10)
        await self.fake.settle()

    def later(self) -> None:
        self.clock.skew += SPACING


@pytest.fixture
async def voiced(make_settings: SettingsFactory) -> AsyncIterator[Voiced]:
    """The service with Aliyun voice on the fake gateway (no per-number limits: the clock is skewed, not the
    fake's) and a webhook, served so that call results reach /v1/receipts/voice/aliyun."""
    fake = await start_aliyun_voice(access_key_id=AK, access_key_secret=SK, limits=())
    settings = make_settings(channels={"voice": {
        "provider": "aliyun", "endpoint": fake.url, "tts_code": "TTS_1", "access_key_id": AK,
        "access_key_secret": SK, "receipt_token": TOKEN, "max_calls": 3}})
    service = Service(settings)
    await service.open()
    server = TestServer(create_app(settings, service=service), host="127.0.0.1")
    await server.start_server()
    fake.receipt_url = str(server.make_url("/v1/receipts/voice/aliyun").with_query(token=TOKEN))
    wired = Voiced(service, fake)
    wired.dispatcher = Dispatcher(service.store, service.channels, service.renderer, settings.worker,
                                  clock=wired.clock)
    try:
        yield wired
    finally:
        await server.close()
        await service.close()
        await fake.stop()


async def _subscribe(service: Service, channels: list[str], webhook: str | None = None) -> None:
    contacts = {"voice": "0355-2021234", **({"webhook": webhook} if webhook else {})}
    body = SubscriberIn.model_validate({"contacts": contacts, "region": "140402", "groups": ["elderly"],
                                        "subscriptions": [{"topic": "env.heavy-pollution", "channels": channels}]})
    await create_subscriber(service.store, body, allow_private_webhooks=True)


async def _publish(service: Service, **fields: object) -> str:
    alert, _ = await publish_alert(service.store, AlertIn.model_validate(
        {"topic": "env.heavy-pollution", "headline": "重污染天气橙色预警", "severity": "moderate",
         "policy": "fallback", **fields}), None)
    return alert.id


async def _delivery(service: Service, alert_id: str, channel: str) -> DeliveryRow:
    rows, _ = await service.store.list_deliveries(alert_id, 10, None, channel=channel)
    return rows[0]


async def _until_not_sent(service: Service, alert_id: str) -> DeliveryRow:
    """The voice delivery once its call result was applied (pushes are asynchronous)."""
    for _ in range(200):
        row = await _delivery(service, alert_id, "voice")
        if row.status != DeliveryStatus.SENT:
            return row
        await asyncio.sleep(0.02)
    raise AssertionError("the call result never arrived")


async def test_a_call_answered_the_second_time_counts_as_reached(voiced: Voiced) -> None:
    """No answer, then a call at least a minute later that is answered: reached on voice after two calls."""
    voiced.fake.script(LANDLINE, "no_answer", "answered")
    await _subscribe(voiced.service, ["voice"])
    alert_id = await _publish(voiced.service)
    await voiced.work()
    first = await _until_not_sent(voiced.service, alert_id)
    assert first.status == DeliveryStatus.QUEUED
    assert first.sent_at is not None and first.next_attempt_at is not None
    assert first.next_attempt_at >= first.sent_at + 60
    voiced.later()
    await voiced.work()
    second = await _until_not_sent(voiced.service, alert_id)
    coverage = await alert_coverage(voiced.service.store, alert_id)
    assert (second.status, len(voiced.fake.calls), coverage.reached) == (DeliveryStatus.DELIVERED, 2, 1)
    assert coverage.by_channel["voice"].delivered == 1


async def test_a_number_never_answered_is_called_max_calls_times_then_falls_back(
        voiced: Voiced, receiver: RunningReceiver) -> None:
    """Three unanswered calls, then the subscriber's next channel (a webhook) reaches them."""
    voiced.fake.standing(LANDLINE, "no_answer")
    await _subscribe(voiced.service, ["voice", "webhook"], receiver.url_for("/after-voice"))
    alert_id = await _publish(voiced.service)
    for _ in range(3):
        await voiced.work()
        await _until_not_sent(voiced.service, alert_id)
        voiced.later()
    await voiced.work()
    voice = await _delivery(voiced.service, alert_id, "voice")
    assert (voice.status, len(voiced.fake.calls)) == (DeliveryStatus.FAILED, 3)
    assert voice.last_error is not None and voice.last_error.endswith("gave up after 3 calls")
    assert (await _delivery(voiced.service, alert_id, "webhook")).status == DeliveryStatus.DELIVERED


async def test_the_alerts_expiry_stops_redialling(voiced: Voiced, receiver: RunningReceiver) -> None:
    """An alert expiring in 90 s leaves room for a second call but not a third: two calls, then the fallback."""
    voiced.fake.standing(LANDLINE, "busy")
    await _subscribe(voiced.service, ["voice", "webhook"], receiver.url_for("/after-voice"))
    alert_id = await _publish(voiced.service, expires_at=datetime.fromtimestamp(time.time() + 90, UTC).isoformat())
    await voiced.work()
    assert (await _until_not_sent(voiced.service, alert_id)).status == DeliveryStatus.QUEUED
    voiced.later()
    await voiced.work()
    voice = await _until_not_sent(voiced.service, alert_id)
    assert (voice.status, len(voiced.fake.calls)) == (DeliveryStatus.FAILED, 2)
    assert voice.last_error is not None and "expires" in voice.last_error
    await voiced.work()
    assert (await _delivery(voiced.service, alert_id, "webhook")).status == DeliveryStatus.DELIVERED


async def test_a_call_result_that_overtakes_its_send_still_redials(voiced: Voiced) -> None:
    """A no-answer result that arrives before the send is recorded is kept, and queues the call again when the
    send is recorded."""
    store = voiced.service.store
    await _subscribe(voiced.service, ["voice"])
    alert_id = await _publish(voiced.service)
    policy = call_policy(voiced.service.channels["voice"])
    assert policy is not None
    now = time.time()
    claimed = await store.claim("w1", now, now + 60, 10)
    early = Receipt(provider_message_id="call-1", delivered=False, key="call-1:200003", error="200003 not answered",
                    retry=True)
    await store.apply_receipts("voice", [early], now, policy)
    await store.record("w1", [DeliveryUpdate(claimed[0].id, alert_id, DeliveryStatus.SENT, now,
                                             provider_message_id="call-1")], now, {"voice": policy})
    row = await _delivery(voiced.service, alert_id, "voice")
    assert row.status == DeliveryStatus.QUEUED
    assert row.next_attempt_at is not None and row.next_attempt_at >= now + 60


async def test_a_proxy_on_a_voice_call_hears_whom_to_tell_first(voiced: Voiced) -> None:
    """A grid worker reached by voice hears the list first, in words (no link), and the person counts as sent."""
    body = SubscriberIn.model_validate({
        "contacts": {"voice": "0355-2021234"}, "region": "140402", "role": "proxy",
        "assists": [{"label": "3号楼2单元 王奶奶", "region": "140402", "groups": ["elderly"]}],
        "subscriptions": [{"topic": "env.heavy-pollution", "channels": ["voice"]}]})
    await create_subscriber(voiced.service.store, body, allow_private_webhooks=True)
    alert_id = await _publish(voiced.service, groups=["elderly"])
    await voiced.work()
    [call] = voiced.fake.calls
    spoken = "".join(str(v) for v in call.params.values())
    assert spoken.startswith("请将本条信息转告以下一位：（一）三号楼二单元 王奶奶") and "http" not in spoken
    assert (await _delivery(voiced.service, alert_id, "proxy")).status == DeliveryStatus.SENT
    assert (await _until_not_sent(voiced.service, alert_id)).status == DeliveryStatus.DELIVERED  # the call result


async def test_a_final_result_after_a_retryable_one_for_the_same_call_ends_the_redial(voiced: Voiced) -> None:
    """Tencent reports one call twice (status "call failed", then the failure reason): when the reason is final
    (an empty number), the call waiting to be made again is not made."""
    store = voiced.service.store
    policy = call_policy(voiced.service.channels["voice"])
    await _subscribe(voiced.service, ["voice"])
    alert_id = await _publish(voiced.service)
    now = time.time()
    [claimed] = await store.claim("w1", now, now + 60, 10)
    await store.record("w1", [DeliveryUpdate(claimed.id, alert_id, DeliveryStatus.SENT, now,
                                             provider_message_id="c-9")], now)
    status = Receipt(provider_message_id="c-9", delivered=False, key="c-9:prompt:2", error="result 2 call failed",
                     retry=True)
    reason = Receipt(provider_message_id="c-9", delivered=False, key="c-9:failure:8", error="failure 8 empty number")
    await store.apply_receipts("voice", [status], now, policy)
    assert (await _delivery(voiced.service, alert_id, "voice")).status == DeliveryStatus.QUEUED
    await store.apply_receipts("voice", [reason], now, policy)
    row = await _delivery(voiced.service, alert_id, "voice")
    assert (row.status, row.last_error) == (DeliveryStatus.FAILED, "receipt: failure 8 empty number")
