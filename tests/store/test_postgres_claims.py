"""PostgreSQL as the work queue: concurrent claimers on separate connections never share a delivery, and a worker
whose lease was reclaimed cannot write over its successor."""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import AsyncIterator

import pytest

from notifier.models import AlertIn
from notifier.publish import publish_alert
from notifier.service import Service
from notifier.states import DeliveryStatus
from notifier.store import Store
from notifier.store.pg_db import PgBackend
from notifier.store.records import DeliveryUpdate, SubscriberRecord
from tests.conftest import SettingsFactory

SUBSCRIBERS = 120


@pytest.fixture
async def pg_service(make_settings: SettingsFactory, pg_schema_url: str) -> AsyncIterator[Service]:
    """A service on a fresh PostgreSQL schema with SUBSCRIBERS webhook subscribers and one alert for them all."""
    async with Service(make_settings(database={"url": pg_schema_url})) as service:
        now = time.time()
        records = [SubscriberRecord(
            id=f"sub-{i:04d}", region="140402", locale="zh-CN", quiet_start=None, quiet_end=None, status="active",
            consent_source="test", consent_at=now, created_at=now, contacts={"webhook": f"https://hooks.test/{i}"},
            subscriptions=[("env.heavy-pollution", ["webhook"], 0)]) for i in range(SUBSCRIBERS)]
        await service.store.bulk_create_subscribers(records, [{} for _ in records])
        await publish_alert(service.store, AlertIn(topic="env.heavy-pollution", headline="预警", severity="severe"),
                            None)
        yield service


async def _other_store(service: Service) -> Store:
    store = Store(PgBackend(service.settings.database.url, min_size=1, max_size=4))
    await store.open()
    return store


async def test_concurrent_claimers_never_claim_one_delivery_twice(pg_service: Service) -> None:
    """Eight claimers on two pools drain the queue in small batches; every delivery is claimed exactly once."""
    stores = [pg_service.store, await _other_store(pg_service)]
    claimed: list[str] = []

    async def claimer(n: int) -> None:
        store = stores[n % 2]
        while batch := await store.claim(f"worker-{n}", time.time(), time.time() + 60, 7):
            claimed.extend(d.id for d in batch)
            await asyncio.sleep(0)

    try:
        await asyncio.gather(*(claimer(n) for n in range(8)))
    finally:
        await stores[1].close()
    assert len(claimed) == SUBSCRIBERS
    assert [d for d, n in Counter(claimed).items() if n > 1] == []


async def test_a_claim_skips_rows_locked_by_an_uncommitted_claim(pg_service: Service) -> None:
    """While one claim's transaction is still open, another claimer gets the other rows at once, not the same."""
    other = await _other_store(pg_service)
    try:
        async with pg_service.store.backend.transaction() as db:
            rows = await db.fetch(
                "UPDATE deliveries SET status = 'sending', lease_owner = 'slow', lease_until = ? WHERE id IN ("
                "SELECT id FROM deliveries WHERE status = 'queued' ORDER BY id LIMIT 50 FOR UPDATE SKIP LOCKED) "
                "RETURNING id", time.time() + 60)
            held = {r[0] for r in rows}
            batch = await asyncio.wait_for(other.claim("fast", time.time(), time.time() + 60, 1000), timeout=5)
        assert len(held) == 50
        assert len(batch) == SUBSCRIBERS - 50
        assert held.isdisjoint(d.id for d in batch)
    finally:
        await other.close()


async def test_the_lease_fence_refuses_a_stale_owner(pg_service: Service) -> None:
    """A worker whose lease expired and was reclaimed records nothing; the new owner's result stands."""
    store = pg_service.store
    now = time.time()
    stale = await store.claim("stale", now, now - 1, 5)  # a lease that has already run out
    assert len(stale) == 5
    await store.sweep(time.time())
    fresh = await store.claim("fresh", time.time(), time.time() + 60, SUBSCRIBERS)
    ids = {d.id for d in stale}
    assert ids <= {d.id for d in fresh}
    alert_id = stale[0].alert_id
    late = [DeliveryUpdate(d, alert_id, DeliveryStatus.FAILED, time.time(), error="late") for d in ids]
    assert (await store.record("stale", late, time.time())).written == []
    done = [DeliveryUpdate(d, alert_id, DeliveryStatus.DELIVERED, time.time()) for d in ids]
    written = (await store.record("fresh", done, time.time())).written
    assert set(written) == ids
    rows, _ = await store.list_deliveries(stale[0].alert_id, SUBSCRIBERS, None)
    assert {r.status for r in rows if r.id in ids} == {"delivered"}
