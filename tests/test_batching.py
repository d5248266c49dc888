"""Provider batches are full: a fan-out over a batch SMS API goes out in requests of the provider's maximum (Aliyun
1,000 numbers, Tencent 200), every number exactly once, whatever the worker's `claim_batch`."""

from __future__ import annotations

import itertools
import time
import uuid
from collections import Counter

import pytest

from notifier.config import Settings, WorkerSettings
from notifier.dispatch import claim_size
from notifier.fakes.aliyun_sms import start_aliyun_sms
from notifier.fakes.tencent_sms import start_tencent_sms
from notifier.models import AlertIn, Severity, Urgency
from notifier.publish import publish_alert
from notifier.service import Service
from notifier.store.records import SubscriberRecord
from tests.conftest import SettingsFactory

pytestmark = pytest.mark.both_backends
NUMBERS = 2_500


def _sms_subscribers(count: int) -> list[SubscriberRecord]:
    now = time.time()
    return [SubscriberRecord(
        id=uuid.uuid4().hex, region="140402", locale="zh-CN", quiet_start=None, quiet_end=None, status="active",
        consent_source="test", consent_at=now, created_at=now, contacts={"sms": f"+86139{i:08d}"},
        subscriptions=[("env.heavy-pollution", ["sms"], 0)]) for i in range(count)]


async def _fan_out(settings: Settings, numbers: int) -> None:
    """`numbers` SMS-only subscribers, one routine alert to them all, delivered until nothing is due."""
    async with Service(settings) as service:
        records = _sms_subscribers(numbers)
        await service.store.bulk_create_subscribers(records, [{} for _ in records])
        await publish_alert(service.store, AlertIn(topic="env.heavy-pollution", headline="重污染天气红色预警",
                                                   severity=Severity.SEVERE, urgency=Urgency.IMMEDIATE), None)
        await service.dispatcher.drain(60)


async def test_sms_fan_out_goes_in_full_provider_requests(make_settings: SettingsFactory) -> None:
    """2,500 numbers with the default claim_batch of 500 go to Aliyun in requests of 1,000, 1,000 and 500."""
    fake = await start_aliyun_sms(access_key_id="ak", access_key_secret="sk")
    try:
        settings = make_settings(channels={"sms": {
            "provider": "aliyun", "endpoint": fake.url, "sign_name": "长治市人民政府", "template_code": "SMS_100001",
            "receipt_token": "receipt-token-0000001", "access_key_id": "ak", "access_key_secret": "sk",
            "rate_per_second": 1000}})
        assert settings.worker.claim_batch < 1000
        await _fan_out(settings, NUMBERS)
        sizes = sorted((len(sent.numbers) for sent in fake.sent), reverse=True)
        assert sizes == [1000, 1000, 500]
        numbers = Counter(n for sent in fake.sent for n in sent.numbers)
        assert len(numbers) == NUMBERS and set(numbers.values()) == {1}
    finally:
        await fake.stop()


async def _tencent_fan_out(make_settings: SettingsFactory, numbers: int, rate: float) -> list[float]:
    """When each request of a fan-out to `numbers` Tencent numbers reached the provider (its first number's time),
    with the account's rate at `rate` requests a second; every number is checked to have gone exactly once."""
    fake = await start_tencent_sms(secret_id="AKIDtest", secret_key="tencent-key", sdk_app_id="1400000001")
    try:
        settings = make_settings(channels={"sms": {
            "provider": "tencent", "endpoint": fake.url, "sign_name": "长治市人民政府", "template_code": "100001",
            "receipt_token": "receipt-token-0000001", "secret_id": "AKIDtest", "secret_key": "tencent-key",
            "sdk_app_id": "1400000001", "rate_per_second": rate}})
        await _fan_out(settings, numbers)
        phones = Counter(sent.phone for sent in fake.sent)
        assert len(phones) == numbers and set(phones.values()) == {1}
        started: dict[str, float] = {}
        for sent in fake.sent:
            started[sent.request_id] = min(started.get(sent.request_id, sent.sent_at), sent.sent_at)
        return sorted(started.values())
    finally:
        await fake.stop()


async def test_a_slow_account_gets_a_claims_requests_one_by_one(make_settings: SettingsFactory) -> None:
    """At 2 requests a second (routine sends: 80 % of it, 1.6 a second in bursts of 1.6) the three requests of one
    claim of 600 numbers are paced apart — the second 0.25 s after the first, the third 0.625 s after that — never
    sent together, as paying for the three at once would."""
    times = await _tencent_fan_out(make_settings, 600, rate=2)
    assert len(times) == 3
    assert min(b - a for a, b in itertools.pairwise(times)) > 0.1


async def test_tencent_fan_out_goes_in_full_requests_of_200(make_settings: SettingsFactory) -> None:
    """1,000 numbers with the default claim_batch of 500 go to Tencent in five requests of 200 — not in claims of 500
    cut into 200 + 200 + 100, six requests — every number once."""
    assert WorkerSettings().claim_batch % 200
    assert len(await _tencent_fan_out(make_settings, 1_000, rate=1000)) == 5


@pytest.mark.parametrize(("claim_batch", "batches", "leased"), [
    (500, [1000], 1000), (500, [200], 600), (4000, [1000], 4000), (500, [], 500), (500, [200, 1000], 1000)])
def test_a_claim_is_whole_requests_of_the_largest_batch(claim_batch: int, batches: list[int], leased: int) -> None:
    """The claim size rounds up to whole requests of the largest batch channel, and stays as set without one."""
    assert claim_size(claim_batch, batches) == leased
