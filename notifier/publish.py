"""Publishing: validate an alert against the catalogue, then store it, its frozen target set and every delivery
row in one transaction (the outbox): once `publish_alert` returns, nothing targeted can be lost."""

from __future__ import annotations

import hashlib
import json
import time
import uuid
from dataclasses import replace
from datetime import UTC, datetime

from notifier.errors import ConflictError, FieldError, InvalidInput, NotFoundError
from notifier.models import (
    SEVERITY_RANK,
    Alert,
    AlertIn,
    AlertStatus,
    Level,
    MsgType,
    Policy,
    Priority,
    Severity,
    Urgency,
)
from notifier.store import Store
from notifier.store.records import AlertRow, KeyRecord, Targeting


def request_hash(alert: AlertIn) -> str:
    """Fingerprint of what was asked, to tell a retried request from a different one under the same key."""
    body = alert.model_dump(mode="json", exclude={"idempotency_key"})
    return hashlib.sha256(json.dumps(body, sort_keys=True, ensure_ascii=False).encode()).hexdigest()


async def _validate(store: Store, alert: AlertIn) -> tuple[dict[str, object], AlertRow | None]:
    topic = await store.get_topic(alert.topic)
    errors: list[FieldError] = []
    if topic is None:
        errors.append(FieldError("topic", f"unknown topic {alert.topic!r}"))
    for code in await store.missing_codes("regions", alert.regions):
        errors.append(FieldError("regions", f"unknown region {code!r}"))
    for code in await store.missing_codes("population_groups", alert.groups):
        errors.append(FieldError("groups", f"unknown group {code!r}"))
    referenced = None
    if alert.references:
        referenced = await store.get_alert(alert.references)
        if referenced is None:
            errors.append(FieldError("references", f"unknown alert {alert.references!r}"))
        elif referenced.topic != alert.topic:
            errors.append(FieldError("references", "an update or cancel must stay on the topic of its alert"))
    if errors:
        raise InvalidInput("the alert cannot be published as given", errors)
    assert topic is not None  # noqa: S101 - errors above covers None
    return topic, referenced


async def publish_alert(store: Store, alert: AlertIn, publisher: KeyRecord | None,
                        now: float | None = None) -> tuple[AlertRow, bool]:
    """Store the alert with its targets and deliveries; returns (alert, created). Same idempotency key and body
    → the stored alert (created False); same key, different body → ConflictError. An update supersedes the alert
    it references and a cancel cancels it (SPEC "Lifecycle"); a repeated cancel returns the first notice."""
    now = time.time() if now is None else now
    fingerprint = request_hash(alert)
    if alert.idempotency_key:
        existing = await store.alert_by_idempotency_key(alert.idempotency_key)
        if existing is not None:
            return _same_or_conflict(existing, fingerprint), False
    topic, referenced = await _validate(store, alert)
    if alert.msg_type is MsgType.UPDATE and referenced is not None:
        alert = _inherit_area(alert, referenced)
    scheduled = alert.scheduled_at.timestamp() if alert.scheduled_at else None
    expires = alert.expires_at.timestamp() if alert.expires_at else None
    if expires is not None and expires <= now:
        raise InvalidInput("the alert has already expired", [FieldError("expires_at", "must be in the future")])
    release = max(now, scheduled or now)
    policy = alert.effective_policy()
    row = AlertRow(
        id=uuid.uuid4().hex, topic=alert.topic, msg_type=alert.msg_type.value, references_id=alert.references,
        headline=alert.headline, body=alert.body, instruction=alert.instruction, severity=alert.severity.value,
        urgency=alert.urgency.value, level=alert.level.value if alert.level else None,
        target_regions=alert.regions, target_groups=alert.groups, policy=policy.value,
        fallback_after=alert.fallback_after, data=dict(alert.data), expires_at=expires, scheduled_at=scheduled,
        idempotency_key=alert.idempotency_key, request_hash=fingerprint, public=alert.public,
        status=(AlertStatus.SCHEDULED if release > now else AlertStatus.ACTIVE).value, targeted=0,
        publisher=publisher.id if publisher else None, department=str(topic["department"]), created_at=now,
        cancelled_at=None)
    stored = await store.create_alert(row, _targeting(alert, referenced, release))
    if stored.id == row.id:
        return stored, True
    if stored.idempotency_key is not None and stored.idempotency_key == row.idempotency_key:
        return _same_or_conflict(stored, fingerprint), False  # a concurrent request with the key won the race
    return stored, False  # a repeated cancel: the first one's notice


def _inherit_area(update: AlertIn, referenced: AlertRow) -> AlertIn:
    """An update that names no regions (or no groups) keeps those of the alert it updates: it speaks to the same
    area unless it says otherwise — only named regions or groups beyond the original's widen it."""
    return update.model_copy(update={"regions": update.regions or referenced.target_regions,
                                     "groups": update.groups or referenced.target_groups})


def _targeting(alert: AlertIn, referenced: AlertRow | None, release: float) -> Targeting:
    """Who the alert goes to: subscribers matching it now; for an update, the referenced alert's frozen targets
    plus whom its wider regions or groups add; for a cancel, those the referenced alert reached, first of all."""
    base = Targeting(topic=alert.topic, min_severity_rank=SEVERITY_RANK[Severity(alert.severity)],
                     regions=alert.regions, groups=alert.groups, policy=alert.effective_policy().value,
                     priority=int(alert.priority()), first_attempt_at=release)
    if referenced is None or alert.msg_type is MsgType.ALERT:
        return base
    if alert.msg_type is MsgType.UPDATE:
        return replace(base, from_alert=referenced.id,
                       widened_from=(referenced.target_regions, referenced.target_groups))
    return replace(base, min_severity_rank=0, regions=[], groups=[], priority=int(Priority.LIFE_SAFETY),
                   from_alert=referenced.id, only_reached=True)


def _same_or_conflict(existing: AlertRow, fingerprint: str) -> AlertRow:
    if existing.request_hash != fingerprint:
        raise ConflictError("this idempotency key was used for a different alert",
                            [FieldError("idempotency_key", "already used with another body")])
    return existing


async def cancel_alert(store: Store, alert_id: str, publisher: KeyRecord | None,
                       now: float | None = None) -> tuple[AlertRow, int, AlertRow | None]:
    """Cancel the alert and, in the same transaction, tell those it reached (SPEC "Lifecycle"). Repeating it, or
    cancelling several times at once, returns the same notice and sends nothing twice.

    Returns (alert, deliveries stopped, the cancel notice or None when nobody had been reached)."""
    now = time.time() if now is None else now
    if await store.get_alert(alert_id) is None:
        raise NotFoundError(f"no alert {alert_id}")
    alert, notice, stopped = await store.cancel_alert(alert_id, publisher.id if publisher else None, now)
    return alert, stopped, notice


def _dt(value: float | None) -> datetime | None:
    return None if value is None else datetime.fromtimestamp(value, UTC)


def alert_view(row: AlertRow) -> Alert:
    """The API's view of a stored alert."""
    created = _dt(row.created_at)
    assert created is not None  # noqa: S101 - created_at is NOT NULL
    return Alert(
        id=row.id, topic=row.topic, msg_type=MsgType(row.msg_type), references=row.references_id,
        headline=row.headline, body=row.body, instruction=row.instruction, severity=Severity(row.severity),
        urgency=Urgency(row.urgency), level=Level(row.level) if row.level else None, regions=row.target_regions,
        groups=row.target_groups, policy=Policy(row.policy), fallback_after=row.fallback_after, data=row.data,
        expires_at=_dt(row.expires_at), scheduled_at=_dt(row.scheduled_at), idempotency_key=row.idempotency_key,
        public=row.public, status=AlertStatus(row.status), targeted=row.targeted, publisher=row.publisher,
        department=row.department, created_at=created, cancelled_at=_dt(row.cancelled_at))
