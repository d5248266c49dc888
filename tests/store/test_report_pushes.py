"""A provider pushes its delivery reports hundreds at a time; a push is applied as if its reports came one after the
other — whatever it holds: repeats, reports of one message that contradict each other, reports of messages not
recorded yet, reports too late to matter."""

from __future__ import annotations

import time

import pytest

from channels.base import Receipt
from notifier.coverage import alert_coverage
from notifier.models import AlertIn
from notifier.publish import publish_alert
from notifier.service import Service
from notifier.states import DeliveryStatus
from notifier.store.records import DeliveryUpdate
from tests.conftest import SubscriberFactory

pytestmark = pytest.mark.both_backends  # SQLite and PostgreSQL (tests/conftest.py)


async def _three_texts_sent(service: Service, make_subscriber: SubscriberFactory) -> tuple[str, dict[str, str]]:
    """Three people (SMS, then email under fallback) sent a warning's SMS, each under an id of its own (m0, m1,
    m2); the alert and each id's delivery."""
    for n in range(3):
        await make_subscriber(contacts={"sms": f"+861380000010{n}", "email": f"p{n}@example.org"})
    alert, _ = await publish_alert(service.store, AlertIn(topic="env.heavy-pollution", headline="预警",
                                                          severity="severe", policy="fallback"), None)
    now = time.time()
    claimed = [d for d in await service.store.claim("worker-1", now, now + 60, 100) if d.channel == "sms"]
    assert len(claimed) == 3
    await service.store.record("worker-1", [
        DeliveryUpdate(d.id, d.alert_id, DeliveryStatus.SENT, now, provider_message_id=f"m{n}")
        for n, d in enumerate(claimed)], now)
    return alert.id, {f"m{n}": d.id for n, d in enumerate(claimed)}


async def _status(service: Service, delivery_id: str) -> str:
    return str(await service.store.backend.reader.fetchval("SELECT status FROM deliveries WHERE id = ?",
                                                           delivery_id))


async def test_a_message_reported_twice_in_one_push_is_settled_by_the_first_report(
        service: Service, make_subscriber: SubscriberFactory) -> None:
    alert_id, ids = await _three_texts_sent(service, make_subscriber)
    counts = await service.store.apply_receipts("sms", [
        Receipt("m0", True, "m0:DELIVERED"), Receipt("m0", False, "m0:UNDELIV", error="UNDELIV")], time.time())
    assert (counts["applied"], counts["stale"]) == (1, 1)
    assert await _status(service, ids["m0"]) == "delivered"
    assert (await alert_coverage(service.store, alert_id)).reached == 1


async def test_the_same_report_twice_in_one_push_counts_once(
        service: Service, make_subscriber: SubscriberFactory) -> None:
    _, ids = await _three_texts_sent(service, make_subscriber)
    counts = await service.store.apply_receipts("sms", [
        Receipt("m1", False, "m1:UNDELIV", error="UNDELIV"), Receipt("m1", False, "m1:UNDELIV", error="UNDELIV")],
        time.time())
    assert (counts["applied"], counts["duplicate"]) == (1, 1)
    assert await _status(service, ids["m1"]) == "failed"


async def test_one_push_applies_new_reports_keeps_unknown_ones_and_leaves_settled_messages_alone(
        service: Service, make_subscriber: SubscriberFactory) -> None:
    """m0 was reported delivered before; a push then says it failed (too late), reports m9 (not recorded yet: kept)
    and m2's failure (its person's email is sent instead) and m1's delivery."""
    alert_id, ids = await _three_texts_sent(service, make_subscriber)
    await service.store.apply_receipts("sms", [Receipt("m0", True, "m0:DELIVERED")], time.time())
    counts = await service.store.apply_receipts("sms", [
        Receipt("m0", False, "m0:UNDELIV", error="UNDELIV"), Receipt("m9", True, "m9:DELIVERED"),
        Receipt("m2", False, "m2:UNDELIV", error="UNDELIV"), Receipt("m1", True, "m1:DELIVERED")], time.time())
    assert counts == {"applied": 2, "duplicate": 0, "unknown": 1, "stale": 1}
    assert [await _status(service, ids[m]) for m in ("m0", "m1", "m2")] == ["delivered", "delivered", "failed"]
    coverage = await alert_coverage(service.store, alert_id)
    assert (coverage.reached, coverage.by_channel["email"].pending) == (2, 1)  # m2's person: their email, now
    failed = await service.store.backend.reader.fetchval("SELECT last_error FROM deliveries WHERE id = ?", ids["m2"])
    assert failed == "receipt: UNDELIV"
    kept = await service.store.backend.reader.fetchval(
        "SELECT outcome FROM receipts WHERE provider_message_id = 'm9'")
    assert kept == "unknown"
