"""A fallback alert tries a subscriber's next channel when the accepted one stays unconfirmed past its window — and
the sweep that does it looks only at the waiting rows whose time has come (migration 0019)."""

from __future__ import annotations

import time

import pytest

from notifier.models import AlertIn
from notifier.publish import publish_alert
from notifier.service import Service
from notifier.states import DeliveryStatus
from notifier.store.records import DeliveryUpdate
from tests.conftest import SubscriberFactory

pytestmark = pytest.mark.both_backends  # SQLite and PostgreSQL (tests/conftest.py)

WINDOW = 60


async def _statuses(service: Service, alert_id: str) -> dict[str, tuple[str, float | None]]:
    rows, _ = await service.store.list_deliveries(alert_id, 10, None)
    return {r.channel: (r.status, r.next_attempt_at) for r in rows}


async def _fallback_alert(service: Service, make_subscriber: SubscriberFactory) -> str:
    await make_subscriber(contacts={"sms": "+8613800000301", "email": "p301@example.org"},
                          channels=["sms", "email"])
    alert, _ = await publish_alert(service.store, AlertIn(topic="env.heavy-pollution", headline="预警",
                                                          policy="fallback", fallback_after=WINDOW), None)
    return alert.id


async def _send_first(service: Service, alert_id: str, at: float) -> None:
    [first] = await service.store.claim("worker-1", at, at + 60, 10)
    await service.store.record("worker-1", [DeliveryUpdate(first.id, alert_id, DeliveryStatus.SENT, at,
                                                           provider_message_id="biz-1", address=first.address)], at)


async def test_the_next_channel_waits_unplanned_until_the_first_is_accepted(
        service: Service, make_subscriber: SubscriberFactory) -> None:
    alert_id = await _fallback_alert(service, make_subscriber)
    assert await _statuses(service, alert_id) == {"sms": ("queued", pytest.approx(time.time(), abs=5)),
                                                  "email": ("skipped", None)}
    await service.store.sweep(time.time() + 10 * WINDOW)  # however late: nothing accepted, nothing to fall back from
    assert (await _statuses(service, alert_id))["email"] == ("skipped", None)


async def test_silence_past_the_window_queues_the_next_channel_not_before(
        service: Service, make_subscriber: SubscriberFactory) -> None:
    alert_id = await _fallback_alert(service, make_subscriber)
    sent_at = time.time()
    await _send_first(service, alert_id, sent_at)
    status, planned = (await _statuses(service, alert_id))["email"]
    assert status == "skipped" and planned == pytest.approx(sent_at + WINDOW, abs=0.01)  # listed as planned
    await service.store.sweep(sent_at + WINDOW - 1)
    assert (await _statuses(service, alert_id))["email"][0] == "skipped"
    await service.store.sweep(sent_at + WINDOW + 1)
    assert (await _statuses(service, alert_id))["email"][0] == "queued"


async def test_a_waiting_row_from_before_the_upgrade_is_looked_at_once_and_waits_for_its_time(
        service: Service, make_subscriber: SubscriberFactory) -> None:
    """Rows written before migration 0019 carry their first-attempt time: the sweep does not fall back on them early;
    it gives each the time that applies."""
    alert_id = await _fallback_alert(service, make_subscriber)
    async with service.store.backend.transaction() as db:  # as the fan-out wrote it before the migration
        await db.execute("UPDATE deliveries SET next_attempt_at = ? WHERE alert_id = ? AND status = 'skipped'",
                         time.time() - 5, alert_id)
    await service.store.sweep(time.time())
    assert (await _statuses(service, alert_id))["email"] == ("skipped", None)  # its predecessor is not sent yet
    sent_at = time.time()
    await _send_first(service, alert_id, sent_at)
    await service.store.sweep(sent_at + WINDOW + 1)
    assert (await _statuses(service, alert_id))["email"][0] == "queued"


async def test_first_channels_accepted_one_by_one_each_wait_for_their_own_window(
        service: Service, make_subscriber: SubscriberFactory) -> None:
    """Two people's SMS accepted in one claim, each under its own serial number and at its own time (Tencent's
    answer): each one's email waits for the window from its own SMS, and is tried when that has passed."""
    await make_subscriber(contacts={"sms": "+8613800000302", "email": "p302@example.org"}, channels=["sms", "email"])
    alert_id = await _fallback_alert(service, make_subscriber)
    at = time.time()
    claimed = await service.store.claim("worker-1", at, at + 60, 10)
    assert len(claimed) == 2
    sent = {d.subscriber_id: at + n for n, d in enumerate(claimed)}
    assert len((await service.store.record("worker-1", [
        DeliveryUpdate(d.id, alert_id, DeliveryStatus.SENT, sent[d.subscriber_id], provider_message_id=f"serial-{n}",
                       address=d.address) for n, d in enumerate(claimed)], at + 2)).written) == 2
    rows, _ = await service.store.list_deliveries(alert_id, 10, None)
    planned = {r.subscriber_id: r.next_attempt_at for r in rows if r.channel == "email"}
    assert planned == {person: pytest.approx(t + WINDOW, abs=0.01) for person, t in sent.items()}
    await service.store.sweep(at + WINDOW + 0.5)  # the first person's window is over, the second's not yet
    rows, _ = await service.store.list_deliveries(alert_id, 10, None)
    assert sorted(r.status for r in rows if r.channel == "email") == ["queued", "skipped"]
