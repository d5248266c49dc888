"""PostgreSQL: a target marked accepted and reached stays where the publish stored it (migration 0025). The pages
of `alert_targets` keep room for the marked versions, so a mark is a heap-only update: no new entry in the key's
index, no row moved to the end of the table — on a full page each of a fan-out's marks was both."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator

import pytest

from notifier.models import AlertIn
from notifier.publish import publish_alert
from notifier.service import Service
from notifier.states import DeliveryStatus
from notifier.store.records import DeliveryUpdate, SubscriberRecord
from tests.conftest import SettingsFactory

# Several pages of targets, each full before the marks if it kept no room; ids as long as the store's own (uuid4
# hex), so that the rows are as large as a real alert's.
SUBSCRIBERS = 400

# Where each target of the alert is stored: its page of the table.
PAGES = "SELECT subscriber_id, (ctid::text::point)[0] FROM alert_targets WHERE alert_id = ?"


@pytest.fixture
async def pg_service(make_settings: SettingsFactory, pg_schema_url: str) -> AsyncIterator[Service]:
    async with Service(make_settings(database={"url": pg_schema_url})) as service:
        now = time.time()
        records = [SubscriberRecord(
            id=f"{i:032x}", region="140402", locale="zh-CN", quiet_start=None, quiet_end=None,
            status="active", consent_source="test", consent_at=now, created_at=now,
            contacts={"webhook": f"https://hooks.test/{i}"}, subscriptions=[("env.heavy-pollution", ["webhook"], 0)])
            for i in range(SUBSCRIBERS)]
        await service.store.bulk_create_subscribers(records, [{} for _ in records])
        yield service


async def test_a_fan_out_marked_reached_keeps_every_target_on_its_page(pg_service: Service) -> None:
    """A warning to 400 webhooks, every one delivered and recorded in one batch: each target is marked reached,
    and not one of them left the page the publish wrote it to."""
    store = pg_service.store
    alert, _ = await publish_alert(store, AlertIn(topic="env.heavy-pollution", headline="重污染天气预警",
                                                  severity="severe"), None)
    stored = dict(await store.backend.reader.fetch(PAGES, alert.id))
    assert len(stored) == SUBSCRIBERS and len(set(stored.values())) > 1
    now = time.time()
    claimed = await store.claim("worker-1", now, now + 60, SUBSCRIBERS)
    assert len(claimed) == SUBSCRIBERS
    at = time.time()
    await store.record("worker-1", [DeliveryUpdate(d.id, d.alert_id, DeliveryStatus.DELIVERED, at)
                                    for d in claimed], at)
    reached = await store.backend.reader.fetchval(
        "SELECT COUNT(*) FROM alert_targets WHERE alert_id = ? AND reached_at IS NOT NULL", alert.id)
    assert reached == SUBSCRIBERS
    moved = {who: page for who, page in await store.backend.reader.fetch(PAGES, alert.id) if stored[who] != page}
    assert moved == {}
