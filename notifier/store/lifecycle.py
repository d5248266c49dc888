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
- approval (SPEC "Departments and approval"): a held alert is stored `pending_approval` with no targets and no
  deliveries (`targeted` says how many it would have now); approving it freezes its targets, creates its
  deliveries and — for an update — supersedes the alert it updates, in one transaction with the status change;
  rejecting it (or the timeout) ends it with a reason; cancelling it withdraws it. Only an alert still pending
  can be decided (Conflict otherwise); a pending or rejected alert cannot be updated, and a published cancel of
  a pending one goes to no one.

Every act appends its audit entry (`audit_log.append`) last, inside the same transaction.
"""

from __future__ import annotations

import uuid
from collections.abc import Collection
from dataclasses import replace
from typing import Any, NamedTuple

from notifier.audit import SYSTEM, Actor, AuditAction, object_ref
from notifier.errors import ConflictError, FieldError, InvalidInput, NotFoundError
from notifier.states import AlertStatus, Approval, DeliveryStatus, MsgType
from notifier.store import alerts, audience, audit_log, fan_out_later
from notifier.store.db import Db, as_list
from notifier.store.records import AlertRow, Targeting
from notifier.store.rows import alert_record
from notifier.store.states import FALLS_BACK, LIVE_ALERT, WAITING, status_list
from notifier.targeting import delivery_priority

# A notice is a message of its own: its CAP identity is given in the storing transaction (store/cap.py).
NEW_CAP_IDENTITY: dict[str, Any] = {"cap_sender": None, "cap_identifier": None, "cap_sent": None, "cap_origin": None}
STOPPED = status_list(AlertStatus.CANCELLED, AlertStatus.SUPERSEDED, AlertStatus.EXPIRED)
# What an update cannot replace: an alert that is over, or one that never went out.
NOT_UPDATABLE = (AlertStatus.CANCELLED, AlertStatus.SUPERSEDED, AlertStatus.REJECTED, AlertStatus.PENDING_APPROVAL)
TIMEOUT_REASON = "timeout"
# Live alerts past their expiry (one parameter: now).
_EXPIRING = f"status IN {LIVE_ALERT} AND expires_at IS NOT NULL AND expires_at <= ?"


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
    # What follows acts on its deliveries: those a large publish adds after its answer are added first.
    await fan_out_later.add_rest(db, alert_id, locked=True)
    return alert_record(row)


async def _acted_on(db: Db, alert_id: str) -> AlertRow:
    """The alert an update or cancel acts on, locked; an exercise was only recorded and cannot be acted on."""
    alert = await _locked(db, alert_id)
    if alert.status == AlertStatus.EXERCISE:
        raise _conflict(f"alert {alert_id} is an exercise: it was recorded, not sent, and cannot be updated or "
                        "cancelled")
    return alert


class Published(NamedTuple):
    """What a publish stored: the alert (or the one stored before under its idempotency key), and whether its
    delivery rows are to be added after the commit (`fan_out_later`)."""

    alert: AlertRow
    deliveries_later: bool = False


async def publish(db: Db, alert: AlertRow, targeting: Targeting, actor: Actor,
                  deliveries_later_from: int | None = None) -> Published:
    """Store the alert with its targets and deliveries. An update supersedes the alert it references; a cancel
    cancels it and is its notice (a repeated cancel returns the first notice instead). Raises Conflict when the
    referenced alert can no longer be updated or cancelled. Same idempotency key (in the alert's department): the
    stored alert. An alert held for approval (`approval` pending) is stored without targets or deliveries. A new
    alert targeting at least `deliveries_later_from` people (None: any number) is stored without its delivery
    rows, which `fan_out_later.add_slice` adds after the commit."""
    if alert.idempotency_key is not None:
        existing = await alerts.by_idempotency_key(db, alert.department, alert.idempotency_key)
        if existing is not None:
            return Published(existing)
    if alert.status == AlertStatus.EXERCISE:  # recorded only: targets no one, acts on no other alert
        if not await alerts.insert(db, alert):
            return Published(await _same_key(db, alert))
        await _audit_published(db, alert, actor)
        return Published(alert)
    if alert.approval == Approval.PENDING:
        return Published(await _hold(db, alert, targeting, actor))
    if alert.msg_type == MsgType.CANCEL and alert.references_id is not None:
        earlier, withdrawn = await _cancel_referenced(db, alert.references_id, alert.id, alert.created_at)
        if earlier is not None:
            return Published(earlier)
        if withdrawn:  # a cancel of what never went out goes nowhere and is not shown publicly either
            alert = replace(alert, approval=Approval.WITHDRAWN.value)
    elif alert.msg_type == MsgType.UPDATE and alert.references_id is not None:
        await _supersede(db, alert.references_id, alert.created_at)
    if not await alerts.insert(db, alert):
        return Published(await _same_key(db, alert))
    frozen = await audience.freeze(db, alert.id, targeting, new=True)
    # Only a fresh target set (a new alert's): an update's or cancel's rows join those of the alert it references.
    later = (deliveries_later_from is not None and targeting.from_alert is None
             and frozen.targeted >= deliveries_later_from)
    if later:
        await fan_out_later.defer(db, alert, targeting)
    else:
        await audience.add_deliveries(db, alert.id, targeting, alert.created_at, frozen)
    stored = await _targeted(db, alert.id, frozen.targeted)
    await _audit_published(db, stored, actor)
    return Published(stored, later)


async def _same_key(db: Db, alert: AlertRow) -> AlertRow:
    """The stored alert whose idempotency key (in its department) refused `alert`'s insert."""
    assert alert.idempotency_key is not None  # noqa: S101 - only the idempotency key can clash
    existing = await alerts.by_idempotency_key(db, alert.department, alert.idempotency_key)
    assert existing is not None  # noqa: S101 - it clashed with this one
    return existing


async def _hold(db: Db, alert: AlertRow, targeting: Targeting, actor: Actor) -> AlertRow:
    """Store a held alert: no targets, no deliveries; `targeted` is what it would have now. An update must be
    able to replace its alert now (it is checked again at approval)."""
    if alert.msg_type == MsgType.UPDATE and alert.references_id is not None:
        _check_updatable(await _acted_on(db, alert.references_id))
    if not await alerts.insert(db, alert):
        return await _same_key(db, alert)
    row = await db.fetchrow("UPDATE alerts SET targeted = ? WHERE id = ? RETURNING *",
                            await audience.would_target(db, targeting), alert.id)
    assert row is not None  # noqa: S101 - inserted in this transaction
    held = alert_record(row)
    await _audit_published(db, held, actor)
    return held


def alert_details(alert: AlertRow, **extra: object) -> dict[str, object]:
    """What an alert's audit entries record of it: codes and counts, never its text (which could name anyone)."""
    return {"topic": alert.topic, "msg_type": alert.msg_type, "severity": alert.severity, "level": alert.level,
            "regions": alert.target_regions, "groups": alert.target_groups, "targeted": alert.targeted,
            "status": alert.status, **extra}


async def _audit_published(db: Db, alert: AlertRow, actor: Actor) -> None:
    """alert.publish, alert.update (the update's own id), or alert.cancel (the cancelled alert, its notice named)."""
    if alert.msg_type == MsgType.CANCEL and alert.references_id is not None:
        await audit_log.append(db, actor, AuditAction.ALERT_CANCEL, object_ref("alert", alert.references_id),
                               {"notice_id": alert.id, "notice_targeted": alert.targeted}, alert.created_at)
        return
    action = AuditAction.ALERT_UPDATE if alert.msg_type == MsgType.UPDATE else AuditAction.ALERT_PUBLISH
    extra = {"references": alert.references_id} if alert.references_id else {}
    await audit_log.append(db, actor, action, object_ref("alert", alert.id), alert_details(alert, **extra),
                           alert.created_at)


async def _fan_out(db: Db, alert: AlertRow, targeting: Targeting, now: float | None = None, *,
                   new: bool = False) -> AlertRow:
    targeted = await audience.fan_out(db, alert.id, targeting, alert.created_at if now is None else now, new=new)
    return await _targeted(db, alert.id, targeted)


async def _targeted(db: Db, alert_id: str, targeted: int) -> AlertRow:
    """The alert as stored now, with how many it targets."""
    row = await db.fetchrow("UPDATE alerts SET targeted = ? WHERE id = ? RETURNING *", targeted, alert_id)
    assert row is not None  # noqa: S101 - inserted in this transaction
    return alert_record(row)


def _check_updatable(alert: AlertRow) -> None:
    if alert.status in NOT_UPDATABLE:
        raise _conflict(f"alert {alert.id} is {alert.status} and cannot be updated")


async def _supersede(db: Db, alert_id: str, now: float) -> None:
    """The update about to be stored replaces `alert_id`: it stops sending and shows as superseded."""
    _check_updatable(await _acted_on(db, alert_id))
    await db.execute(f"UPDATE alerts SET status = '{AlertStatus.SUPERSEDED}' WHERE id = ?", alert_id)
    await _stop_waiting(db, alert_id, DeliveryStatus.CANCELLED, now)


async def _cancel_referenced(db: Db, alert_id: str, notice_id: str, now: float) -> tuple[AlertRow | None, bool]:
    """A published cancel (`notice_id`, about to be stored) cancels `alert_id`. Returns (the earlier notice when
    the alert was cancelled already with one — the caller stores nothing then —, whether the alert was withdrawn
    before it went out); (None, …) when the new notice is to be stored — and linked to the alert."""
    alert = await _acted_on(db, alert_id)
    if alert.status == AlertStatus.CANCELLED and alert.cancel_notice_id is not None:
        return await alerts.get(db, alert.cancel_notice_id), False
    _check_cancellable(alert)
    await _mark_cancelled(db, alert, now, notice_id)
    return None, alert.approval == Approval.PENDING


def _check_cancellable(alert: AlertRow) -> None:
    if alert.status == AlertStatus.SUPERSEDED:
        raise _conflict(f"alert {alert.id} was superseded by an update: cancel the update")
    if alert.status == AlertStatus.REJECTED:
        raise _conflict(f"alert {alert.id} was rejected: it never went out")


async def cancel(db: Db, alert_id: str, publisher: str | None, actor: Actor,
                 now: float) -> tuple[AlertRow, AlertRow | None, int]:
    """Cancel through its own route: (the cancelled alert, its notice or None when nobody had been reached,
    deliveries stopped). The notice repeats the alert's words as a cancellation. An alert still waiting for
    approval is withdrawn: nothing was sent, so nothing is to be withdrawn from anyone."""
    alert = await _acted_on(db, alert_id)
    if alert.status == AlertStatus.CANCELLED:
        notice = await alerts.get(db, alert.cancel_notice_id) if alert.cancel_notice_id else None
        return alert, notice, 0
    _check_cancellable(alert)
    stopped = await _mark_cancelled(db, alert, now, None)
    notice = await _notice_if_reached(db, alert, publisher, now)
    cancelled = await alerts.get(db, alert_id)
    assert cancelled is not None  # noqa: S101 - locked above
    await audit_log.append(db, actor, AuditAction.ALERT_CANCEL, object_ref("alert", alert_id),
                           {"notice_id": notice.id if notice else None, "stopped": stopped}, now)
    return cancelled, notice, stopped


async def _mark_cancelled(db: Db, alert: AlertRow, now: float, notice_id: str | None) -> int:
    """The alert is cancelled and its waiting deliveries too; one still waiting for approval is withdrawn."""
    await db.execute(f"UPDATE alerts SET status = '{AlertStatus.CANCELLED}', cancelled_at = ?, cancel_notice_id = ?, "
                     f"approval = CASE WHEN approval = '{Approval.PENDING}' THEN '{Approval.WITHDRAWN}' "
                     "ELSE approval END WHERE id = ?", now, notice_id, alert.id)
    return await _stop_waiting(db, alert.id, DeliveryStatus.CANCELLED, now)


def notice_targeting(alert: AlertRow, notice: AlertRow, now: float) -> Targeting:
    """Who `notice`, the cancel notice of `alert`, goes to: those of its frozen targets it reached or whose delivery
    was accepted, first of all (a cancel's priority: `delivery_priority`), by the alert's policy."""
    return Targeting(topic=alert.topic, min_severity_rank=0, regions=[], groups=[], policy=alert.policy,
                     priority=int(delivery_priority(notice)), first_attempt_at=now, from_alert=alert.id,
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
    return await _fan_out(db, notice, notice_targeting(alert, notice, now), new=True)


class RecordedAlerts(NamedTuple):
    """What a record of results needs of its alerts, read in one statement on the single writer's thread."""

    stopped: dict[str, DeliveryStatus]  # may send no more: the status their waiting deliveries take
    falling_back: set[str]  # policy `fallback`: a next channel waits behind each accepted send


async def recorded_alerts(db: Db, alert_ids: Collection[str]) -> RecordedAlerts:
    """Of these alerts, those that may send no more and those that fall back."""
    if not alert_ids:
        return RecordedAlerts({}, set())
    rows = await db.fetch(
        f"SELECT id, CASE WHEN status IN {STOPPED} THEN status END, {FALLS_BACK} FROM alerts "
        f"WHERE id IN {db.dialect.each()} AND (status IN {STOPPED} OR {FALLS_BACK})", as_list(alert_ids))
    return RecordedAlerts(
        {r[0]: DeliveryStatus.EXPIRED if r[1] == AlertStatus.EXPIRED else DeliveryStatus.CANCELLED
         for r in rows if r[1] is not None},
        {r[0] for r in rows if r[2]})


async def notice_late_receivers(db: Db, alert_ids: Collection[str], now: float) -> list[AlertRow]:
    """Sends that were in flight when their alert was cancelled and were then accepted: those subscribers get the
    cancel notice too, once (the notice is created now if nobody had been reached at the cancel). Returns the
    notices that queued deliveries (life-safety ones: `delivery_priority`), for the workers to be told of them."""
    noticed: list[AlertRow] = []
    for alert_id in alert_ids:
        alert = await _locked(db, alert_id)
        if alert.status != AlertStatus.CANCELLED:
            continue
        if alert.cancel_notice_id is None:
            if (created := await _notice_if_reached(db, alert, alert.publisher, now)) is not None:
                noticed.append(created)
            continue
        notice = await alerts.get(db, alert.cancel_notice_id)
        assert notice is not None  # noqa: S101 - linked in the cancel's transaction
        widened = await _fan_out(db, notice, notice_targeting(alert, notice, now))  # adds only those not targeted yet
        if widened.targeted > notice.targeted:
            noticed.append(widened)
    return noticed


async def expire(db: Db, now: float) -> int:
    """Waiting deliveries of live alerts past their expiry become expired, and the alerts too; returns how many
    deliveries."""
    for alert_id in await fan_out_later.among(db, f"SELECT id FROM alerts WHERE {_EXPIRING}", now):
        await fan_out_later.add_rest(db, alert_id)  # its deliveries expire with the others
    expired = await db.execute(
        f"UPDATE deliveries SET status = '{DeliveryStatus.EXPIRED}', finished_at = ?, updated_at = ? "
        f"WHERE status IN {WAITING} AND alert_id IN (SELECT id FROM alerts WHERE {_EXPIRING})", now, now, now)
    await db.execute(f"UPDATE alerts SET status = '{AlertStatus.EXPIRED}' WHERE {_EXPIRING}", now)
    return expired


# ---------------------------------------------------------------- two-person release


async def _pending(db: Db, alert_id: str) -> AlertRow:
    """The alert, locked, which must still wait for a decision: concurrent decisions go one at a time and the
    second finds it decided (Conflict)."""
    row = await db.fetchrow(f"SELECT * FROM alerts WHERE id = ?{db.dialect.for_update}", alert_id)
    if row is None:
        raise NotFoundError("no such alert")
    alert = alert_record(row)
    if alert.status != AlertStatus.PENDING_APPROVAL:
        raise ConflictError(f"alert {alert_id} is {alert.status}, not waiting for approval")
    return alert


async def approve(db: Db, alert_id: str, targeting: Targeting, actor: Actor, now: float) -> AlertRow:
    """Release a held alert: its targets are frozen now, its deliveries created (due at `targeting`'s first
    attempt: now, or its schedule), an update supersedes its alert — all with the status change."""
    alert = await _pending(db, alert_id)
    if alert.expires_at is not None and alert.expires_at <= now:
        raise ConflictError(f"alert {alert_id} expired while it waited for approval")
    if alert.msg_type == MsgType.UPDATE and alert.references_id is not None:
        await _supersede(db, alert.references_id, now)
    later = alert.scheduled_at is not None and alert.scheduled_at > now
    status = AlertStatus.SCHEDULED if later else AlertStatus.ACTIVE
    await db.execute("UPDATE alerts SET status = ?, approval = ?, decided_by = ?, decided_at = ? WHERE id = ?",
                     status.value, Approval.APPROVED.value, actor.id, now, alert_id)
    approved = await _fan_out(db, alert, targeting, now)
    await audit_log.append(db, actor, AuditAction.ALERT_APPROVE, object_ref("alert", alert_id),
                           alert_details(approved), now)
    return approved


async def _reject(db: Db, alert: AlertRow, reason: str, actor: Actor, now: float) -> AlertRow:
    row = await db.fetchrow("UPDATE alerts SET status = ?, approval = ?, decided_by = ?, decided_at = ?, "
                            "decision_reason = ? WHERE id = ? RETURNING *", AlertStatus.REJECTED.value,
                            Approval.REJECTED.value, actor.id, now, reason, alert.id)
    assert row is not None  # noqa: S101 - locked by the caller
    await audit_log.append(db, actor, AuditAction.ALERT_REJECT, object_ref("alert", alert.id), {"reason": reason},
                           now)
    return alert_record(row)


async def reject(db: Db, alert_id: str, reason: str, actor: Actor, now: float) -> AlertRow:
    """A held alert is refused: it ends `rejected` with the reason, having sent nothing."""
    return await _reject(db, await _pending(db, alert_id), reason, actor, now)


async def reject_overdue(db: Db, created_before: float, now: float) -> int:
    """Held alerts nobody decided on in time are rejected with reason `timeout` (by `system`); returns how many.
    One being decided right now (its row locked) is left to that decision."""
    rows = await db.fetch(f"SELECT * FROM alerts WHERE status = '{AlertStatus.PENDING_APPROVAL}' "
                          f"AND created_at <= ? ORDER BY created_at, id{db.dialect.skip_locked}", created_before)
    for row in rows:
        await _reject(db, alert_record(row), TIMEOUT_REASON, SYSTEM, now)
    return len(rows)
