"""What updates, cancels and expiry do to an alert and its deliveries (SPEC "Lifecycle"), atomically inside the
transaction that publishes the update or cancel.

- cancel: the alert becomes `cancelled`, its waiting deliveries `cancelled`; ONE notice goes to the frozen targets
  it reached or whose delivery was accepted. The alert row is locked first (PostgreSQL `FOR UPDATE`; SQLite's write
  transaction), so repeated or concurrent cancels find it cancelled and return the same notice. A send in flight
  at the cancel finishes; if it is accepted, its subscriber is added to the notice (created then if needed).
- update: the referenced alert becomes `superseded`, its waiting deliveries `cancelled`; a cancelled or superseded
  alert cannot be updated (Conflict).
- expiry: waiting deliveries of an alert past `expires_at` become `expired`, and the alert too.
- exercise (a CAP Exercise or Test): stored as it is, targeting no one and acting on no other alert.
"""

from __future__ import annotations

import uuid
from collections.abc import Collection
from dataclasses import replace
from typing import Any

from notifier.errors import ConflictError, FieldError, InvalidInput
from notifier.states import AlertStatus, DeliveryStatus, MsgType, Priority
from notifier.store import alerts, audience
from notifier.store.db import Db, as_list
from notifier.store.records import AlertRow, Targeting
from notifier.store.rows import alert_record
from notifier.store.states import LIVE_ALERT, WAITING, status_list

# A notice is a message of its own: its CAP identity is given in the storing transaction (store/cap.py).
NEW_CAP_IDENTITY: dict[str, Any] = {"cap_sender": None, "cap_identifier": None, "cap_sent": None, "cap_origin": None}
STOPPED = status_list(AlertStatus.CANCELLED, AlertStatus.SUPERSEDED, AlertStatus.EXPIRED)


def _conflict(message: str) -> ConflictError:
    return ConflictError(message, [FieldError("references", message)])


async def _stop_waiting(db: Db, alert_id: str, status: DeliveryStatus, now: float) -> int:
    """End the alert's deliveries that have not gone out yet; returns how many."""
    return await db.execute(
        f"UPDATE deliveries SET status = '{status}', finished_at = ?, updated_at = ?, lease_owner = NULL, "
        f"lease_until = NULL WHERE alert_id = ? AND status IN {WAITING}", now, now, alert_id)


async def _locked(db: Db, alert_id: str) -> AlertRow:
    """The alert, locked until the transaction ends: concurrent updates and cancels of it go one at a time."""
    row = await db.fetchrow(f"SELECT * FROM alerts WHERE id = ?{db.dialect.for_update}", alert_id)
    if row is None:
        raise InvalidInput(f"no alert {alert_id}", [FieldError("references", "no such alert")])
    return alert_record(row)


async def _acted_on(db: Db, alert_id: str) -> AlertRow:
    """The alert an update or cancel acts on, locked; an exercise was only recorded and cannot be acted on."""
    alert = await _locked(db, alert_id)
    if alert.status == AlertStatus.EXERCISE:
        raise _conflict(f"alert {alert_id} is an exercise: it was recorded, not sent, and cannot be updated or "
                        "cancelled")
    return alert


async def publish(db: Db, alert: AlertRow, targeting: Targeting) -> AlertRow:
    """Store the alert with its targets and deliveries. An update supersedes the alert it references; a cancel
    cancels it and is its notice (a repeated cancel returns the first notice instead). Raises Conflict when the
    referenced alert can no longer be updated or cancelled. Same idempotency key: the stored alert."""
    if alert.idempotency_key is not None:
        existing = await alerts.by_idempotency_key(db, alert.idempotency_key)
        if existing is not None:
            return existing
    if alert.status == AlertStatus.EXERCISE:  # recorded only: targets no one, acts on no other alert
        return alert if await alerts.insert(db, alert) else await _same_key(db, alert)
    if alert.msg_type == MsgType.CANCEL and alert.references_id is not None:
        earlier = await _cancel_referenced(db, alert.references_id, alert.id, alert.created_at)
        if earlier is not None:
            return earlier
    elif alert.msg_type == MsgType.UPDATE and alert.references_id is not None:
        await _supersede(db, alert.references_id, alert.created_at)
    if not await alerts.insert(db, alert):
        return await _same_key(db, alert)
    return await _fan_out(db, alert, targeting)


async def _same_key(db: Db, alert: AlertRow) -> AlertRow:
    """The stored alert whose idempotency key refused `alert`'s insert."""
    assert alert.idempotency_key is not None  # noqa: S101 - only the idempotency key can clash
    existing = await alerts.by_idempotency_key(db, alert.idempotency_key)
    assert existing is not None  # noqa: S101 - it clashed with this one
    return existing


async def _fan_out(db: Db, alert: AlertRow, targeting: Targeting) -> AlertRow:
    targeted = await audience.fan_out(db, alert.id, targeting, alert.created_at)
    row = await db.fetchrow("UPDATE alerts SET targeted = ? WHERE id = ? RETURNING *", targeted, alert.id)
    assert row is not None  # noqa: S101 - inserted in this transaction
    return alert_record(row)


async def _supersede(db: Db, alert_id: str, now: float) -> None:
    """The update about to be stored replaces `alert_id`: it stops sending and shows as superseded."""
    alert = await _acted_on(db, alert_id)
    if alert.status in (AlertStatus.CANCELLED, AlertStatus.SUPERSEDED):
        raise _conflict(f"alert {alert_id} is {alert.status} and cannot be updated")
    await db.execute(f"UPDATE alerts SET status = '{AlertStatus.SUPERSEDED}' WHERE id = ?", alert_id)
    await _stop_waiting(db, alert_id, DeliveryStatus.CANCELLED, now)


async def _cancel_referenced(db: Db, alert_id: str, notice_id: str, now: float) -> AlertRow | None:
    """A published cancel (`notice_id`, about to be stored) cancels `alert_id`. Returns the earlier notice when the
    alert was cancelled already with one (the caller stores nothing then); None when the new notice is to be
    stored — and linked to the alert."""
    alert = await _acted_on(db, alert_id)
    if alert.status == AlertStatus.CANCELLED and alert.cancel_notice_id is not None:
        return await alerts.get(db, alert.cancel_notice_id)
    if alert.status == AlertStatus.SUPERSEDED:
        raise _conflict(f"alert {alert_id} was superseded by an update: cancel the update")
    await _mark_cancelled(db, alert, now, notice_id)
    return None


async def cancel(db: Db, alert_id: str, publisher: str | None, now: float) -> tuple[AlertRow, AlertRow | None, int]:
    """Cancel through its own route: (the cancelled alert, its notice or None when nobody had been reached,
    deliveries stopped). The notice repeats the alert's words as a cancellation."""
    alert = await _acted_on(db, alert_id)
    if alert.status == AlertStatus.SUPERSEDED:
        raise _conflict(f"alert {alert_id} was superseded by an update: cancel the update")
    if alert.status == AlertStatus.CANCELLED:
        notice = await alerts.get(db, alert.cancel_notice_id) if alert.cancel_notice_id else None
        return alert, notice, 0
    stopped = await _mark_cancelled(db, alert, now, None)
    notice = await _notice_if_reached(db, alert, publisher, now)
    cancelled = await alerts.get(db, alert_id)
    assert cancelled is not None  # noqa: S101 - locked above
    return cancelled, notice, stopped


async def _mark_cancelled(db: Db, alert: AlertRow, now: float, notice_id: str | None) -> int:
    await db.execute(f"UPDATE alerts SET status = '{AlertStatus.CANCELLED}', cancelled_at = ?, cancel_notice_id = ? "
                     "WHERE id = ?", now, notice_id, alert.id)
    return await _stop_waiting(db, alert.id, DeliveryStatus.CANCELLED, now)


def notice_targeting(alert: AlertRow, now: float) -> Targeting:
    """Who a cancel notice of `alert` goes to: those of its frozen targets it reached or whose delivery was
    accepted, first of all (a stale warning must be withdrawn before anything routine), by the alert's policy."""
    return Targeting(topic=alert.topic, min_severity_rank=0, regions=[], groups=[], policy=alert.policy,
                     priority=int(Priority.LIFE_SAFETY), first_attempt_at=now, from_alert=alert.id,
                     only_reached=True)


async def _notice_if_reached(db: Db, alert: AlertRow, publisher: str | None, now: float) -> AlertRow | None:
    """Create the alert's own cancel notice when someone was reached (or accepted it); link it to the alert."""
    reached = await db.fetchval("SELECT COUNT(*) FROM alert_targets WHERE alert_id = ? "
                                "AND (accepted_at IS NOT NULL OR reached_at IS NOT NULL)", alert.id)
    if not reached:
        return None
    notice = replace(alert, id=uuid.uuid4().hex, msg_type=MsgType.CANCEL.value, references_id=alert.id,
                     idempotency_key=None, status=AlertStatus.ACTIVE.value, targeted=0, created_at=now,
                     cancelled_at=None, cancel_notice_id=None, scheduled_at=None, expires_at=None,
                     publisher=publisher or alert.publisher, **NEW_CAP_IDENTITY)
    await alerts.insert(db, notice)
    await db.execute("UPDATE alerts SET cancel_notice_id = ? WHERE id = ?", notice.id, alert.id)
    return await _fan_out(db, notice, notice_targeting(alert, now))


async def stopped_alerts(db: Db, alert_ids: Collection[str]) -> dict[str, DeliveryStatus]:
    """Of these alerts, those that may send no more, with the status their waiting deliveries take."""
    if not alert_ids:
        return {}
    rows = await db.fetch(f"SELECT id, status FROM alerts WHERE id IN {db.dialect.each()} AND status IN {STOPPED}",
                          as_list(alert_ids))
    return {r[0]: DeliveryStatus.EXPIRED if r[1] == AlertStatus.EXPIRED else DeliveryStatus.CANCELLED
            for r in rows}


async def notice_late_receivers(db: Db, alert_ids: Collection[str], now: float) -> None:
    """Sends that were in flight when their alert was cancelled and were then accepted: those subscribers get the
    cancel notice too, once (the notice is created now if nobody had been reached at the cancel)."""
    for alert_id in alert_ids:
        alert = await _locked(db, alert_id)
        if alert.status != AlertStatus.CANCELLED:
            continue
        if alert.cancel_notice_id is None:
            await _notice_if_reached(db, alert, alert.publisher, now)
            continue
        notice = await alerts.get(db, alert.cancel_notice_id)
        assert notice is not None  # noqa: S101 - linked in the cancel's transaction
        await _fan_out(db, notice, notice_targeting(alert, now))  # adds only those not targeted yet


async def expire(db: Db, now: float) -> int:
    """Waiting deliveries of live alerts past their expiry become expired, and the alerts too; returns how many
    deliveries."""
    expired = await db.execute(
        f"UPDATE deliveries SET status = '{DeliveryStatus.EXPIRED}', finished_at = ?, updated_at = ? "
        f"WHERE status IN {WAITING} AND alert_id IN (SELECT id FROM alerts WHERE status IN {LIVE_ALERT} "
        "AND expires_at IS NOT NULL AND expires_at <= ?)", now, now, now)
    await db.execute(f"UPDATE alerts SET status = '{AlertStatus.EXPIRED}' WHERE status IN {LIVE_ALERT} "
                     "AND expires_at IS NOT NULL AND expires_at <= ?", now)
    return expired
