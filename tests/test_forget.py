"""Deleting a subscriber erases them: no table holds their rows, pending deliveries are cancelled and past coverage
is unchanged — on both back-ends (the byte scan of SQLite's files is in test_forget_bytes.py; what PostgreSQL
operators must do about dead tuples, WAL and backups is in docs/erasure.md)."""

from __future__ import annotations

import pytest

from notifier.coverage import alert_coverage
from notifier.fakes.smtp import RunningSmtp
from notifier.models import AlertIn
from notifier.publish import publish_alert
from notifier.service import Service
from tests.conftest import SubscriberFactory, settle

MOBILE = "+8613912345678"
EMAIL = "wang.fang@example.org"

pytestmark = pytest.mark.both_backends  # SQLite and PostgreSQL (tests/conftest.py)


async def _alert(service: Service, **fields: object) -> str:
    alert, _ = await publish_alert(service.store, AlertIn.model_validate(
        {"topic": "env.heavy-pollution", "headline": "重污染天气橙色预警", "severity": "moderate", **fields}), None)
    return alert.id


async def test_no_table_keeps_a_row_of_the_forgotten_subscriber(
        service: Service, make_subscriber: SubscriberFactory, smtp: RunningSmtp) -> None:
    """Subscriber, contacts, groups, subscriptions and channels are gone; the frozen target set stays."""
    record = await make_subscriber(contacts={"sms": MOBILE, "email": EMAIL}, channels=["email"], groups=["elderly"])
    await _alert(service)
    await service.store.forget_subscriber(record.id)
    reader = service.store.backend.reader
    for query in ("SELECT 1 FROM subscribers WHERE id = ?", "SELECT 1 FROM contacts WHERE subscriber_id = ?",
                  "SELECT 1 FROM subscriber_groups WHERE subscriber_id = ?",
                  "SELECT 1 FROM subscriptions WHERE subscriber_id = ?",
                  "SELECT 1 FROM subscription_channels WHERE subscriber_id = ?"):
        assert await reader.fetch(query, record.id) == [], query
    targets = await reader.fetch("SELECT region FROM alert_targets WHERE subscriber_id = ?", record.id)
    assert [tuple(r) for r in targets] == [("140402",)]


async def test_pending_deliveries_are_cancelled(
        service: Service, make_subscriber: SubscriberFactory, smtp: RunningSmtp) -> None:
    """A delivery not yet sent when the subscriber is deleted is cancelled, never sent."""
    record = await make_subscriber(contacts={"email": EMAIL})
    alert_id = await _alert(service)
    await service.store.forget_subscriber(record.id)
    await settle(service)
    rows, _ = await service.store.list_deliveries(alert_id, 10, None)
    assert [r.status for r in rows] == ["cancelled"]
    assert smtp.messages_to(EMAIL) == []


async def test_coverage_of_past_alerts_is_unchanged(
        service: Service, make_subscriber: SubscriberFactory, smtp: RunningSmtp) -> None:
    """The coverage of an alert sent before the deletion keeps its targeted and reached counts."""
    record = await make_subscriber(contacts={"email": EMAIL}, groups=["elderly"])
    await make_subscriber(contacts={"email": "neighbour@example.org"})
    alert_id = await _alert(service)
    await settle(service)
    before = await alert_coverage(service.store, alert_id)
    await service.store.forget_subscriber(record.id)
    after = await alert_coverage(service.store, alert_id)
    assert (after.targeted, after.reached) == (before.targeted, before.reached) == (2, 2)
    assert after.by_region == before.by_region and after.by_group == before.by_group


async def test_forgetting_an_unknown_subscriber_says_so(service: Service) -> None:
    """Deleting an id that is not there answers False and changes nothing."""
    assert await service.store.forget_subscriber("0" * 32) is False
