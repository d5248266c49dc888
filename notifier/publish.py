"""Publishing: validate an alert against the catalogue, then store it, its frozen target set and every delivery
row in one transaction (the outbox): once `publish_alert` returns, nothing targeted can be lost.

`check_alert` turns a raw body into an alert with every problem reported at once (the input rules are
`notifier.input_rules`: regions and groups by code or by catalogue name, stored as codes)."""

from __future__ import annotations

import hashlib
import json
import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any

from pydantic import ValidationError

from notifier.errors import ConflictError, FieldError, InvalidInput, NotFoundError
from notifier.input_rules import CatalogueCodes, field_errors
from notifier.models import SEVERITY_RANK, Alert, AlertIn, AlertStatus, Level, MsgType, Policy, Severity, Urgency
from notifier.store.protocol import Store
from notifier.store.records import AlertRow, KeyRecord, Targeting


def request_hash(alert: AlertIn) -> str:
    """Fingerprint of what was asked, to tell a retried request from a different one under the same key."""
    body = alert.model_dump(mode="json", exclude={"idempotency_key"})
    return hashlib.sha256(json.dumps(body, sort_keys=True, ensure_ascii=False).encode()).hexdigest()


INVALID_ALERT = "the alert cannot be published as given"


@dataclass(frozen=True, slots=True)
class _Checked:
    """What the catalogue says of an alert's references to it: codes for the names, and every problem."""

    regions: list[Any]
    groups: list[Any]
    errors: list[FieldError]
    topic: dict[str, object] | None


async def _check_references(store: Store, codes: CatalogueCodes, data: Mapping[str, Any]) -> _Checked:
    """Topic, regions, groups (codes or catalogue names) and the referenced alert, read from a body that may not
    have passed the model yet (non-text values are left to the model's own errors)."""
    errors: list[FieldError] = []
    topic_key = data.get("topic")
    topic = await store.get_topic(topic_key) if isinstance(topic_key, str) else None
    if isinstance(topic_key, str) and topic is None:
        errors.append(FieldError("topic", codes.unknown("topic", topic_key)))
    regions, region_errors = codes.resolve("region", _listed(data.get("regions")), "regions")
    groups, group_errors = codes.resolve("group", _listed(data.get("groups")), "groups")
    errors += region_errors + group_errors
    references = data.get("references")
    if isinstance(references, str) and references:
        referenced = await store.get_alert(references)
        if referenced is None:
            errors.append(FieldError("references", f"unknown alert {references!r}"))
        elif isinstance(topic_key, str) and referenced.topic != topic_key:
            errors.append(FieldError("references", "an update or cancel must stay on the topic of its alert"))
    return _Checked(regions, groups, errors, topic)


def _listed(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


async def check_alert(store: Store, data: Any) -> AlertIn:
    """A body (API, `notifier publish` file) as an alert, or InvalidInput listing every problem in one pass: the
    model's and the catalogue's together. Regions and groups may be codes or catalogue names (`城区`); the
    alert returned carries codes."""
    errors: list[FieldError] = []
    alert: AlertIn | None = None
    try:
        alert = AlertIn.model_validate(data)
    except ValidationError as exc:
        errors = field_errors(exc)
    checked = await _check_references(store, await CatalogueCodes.load(store), data if isinstance(data, dict) else {})
    named = {e.field for e in checked.errors}
    errors = [e for e in errors if e.field.split(".")[0] not in named] + checked.errors
    if errors or alert is None:
        raise InvalidInput(INVALID_ALERT, errors)
    return alert.model_copy(update={"regions": checked.regions, "groups": checked.groups})


async def publish_alert(store: Store, alert: AlertIn, publisher: KeyRecord | None,
                        now: float | None = None) -> tuple[AlertRow, bool]:
    """Store the alert with its targets and deliveries; returns (alert, created). Same idempotency key and body
    → the stored alert (created False); same key, different body → ConflictError. Region and group names are
    stored as their codes."""
    now = time.time() if now is None else now
    checked = await _check_references(store, await CatalogueCodes.load(store),
                                      alert.model_dump(include={"topic", "regions", "groups", "references"}))
    alert = alert.model_copy(update={"regions": checked.regions, "groups": checked.groups})
    fingerprint = request_hash(alert)
    if alert.idempotency_key:
        existing = await store.alert_by_idempotency_key(alert.idempotency_key)
        if existing is not None:
            return _same_or_conflict(existing, fingerprint), False
    if checked.errors:
        raise InvalidInput(INVALID_ALERT, checked.errors)
    assert checked.topic is not None  # noqa: S101 - an unknown topic is among the errors above
    row, targeting = _outbox(alert, checked.topic, publisher, fingerprint, now)
    stored = await store.create_alert(row, targeting)
    if stored.id != row.id:  # a concurrent request with the same idempotency key won the race
        return _same_or_conflict(stored, fingerprint), False
    return stored, True


def _outbox(alert: AlertIn, topic: Mapping[str, object], publisher: KeyRecord | None, fingerprint: str,
            now: float) -> tuple[AlertRow, Targeting]:
    """The alert's row and how to freeze its audience."""
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
    targeting = Targeting(
        topic=alert.topic, min_severity_rank=SEVERITY_RANK[Severity(alert.severity)], regions=alert.regions,
        groups=alert.groups, policy=policy.value, priority=int(alert.priority()), first_attempt_at=release,
        from_alert=alert.references if alert.msg_type is not MsgType.ALERT else None)
    return row, targeting


def _same_or_conflict(existing: AlertRow, fingerprint: str) -> AlertRow:
    if existing.request_hash != fingerprint:
        raise ConflictError("this idempotency key was used for a different alert",
                            [FieldError("idempotency_key", "already used with another body")])
    return existing


async def cancel_alert(store: Store, alert_id: str, publisher: KeyRecord | None,
                       now: float | None = None) -> tuple[AlertRow, int, AlertRow | None]:
    """Stop the alert's pending deliveries and tell those who already received it that it is cancelled.

    Returns (alert, deliveries stopped, the cancel notice or None when nobody had received the alert)."""
    now = time.time() if now is None else now
    alert = await store.get_alert(alert_id)
    if alert is None:
        raise NotFoundError(f"no alert {alert_id}")
    stopped = await store.cancel_alert(alert_id, now)
    notice: AlertRow | None = None
    received = await store.accepted_count(alert_id)
    if alert.status != AlertStatus.CANCELLED and alert.msg_type == MsgType.ALERT and received:
        notice_row = replace(
            alert, id=uuid.uuid4().hex, msg_type=MsgType.CANCEL.value, references_id=alert.id,
            idempotency_key=None, status=AlertStatus.ACTIVE.value, targeted=0, created_at=now, cancelled_at=None,
            scheduled_at=None, publisher=publisher.id if publisher else alert.publisher)
        # Only those whose delivery was accepted ever saw the alert; a cancel would confuse everybody else.
        targeting = Targeting(topic=alert.topic, min_severity_rank=0, regions=[], groups=[], policy="fallback",
                              priority=2, first_attempt_at=now, from_alert=alert.id, only_accepted=True)
        notice = await store.create_alert(notice_row, targeting)
    refreshed = await store.get_alert(alert_id)
    assert refreshed is not None  # noqa: S101 - it existed a moment ago and alerts are never deleted
    return refreshed, stopped, notice


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
