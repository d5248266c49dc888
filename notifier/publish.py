"""Publishing: validate an alert against the catalogue, then store it, its frozen target set and every delivery
row in one transaction (the outbox): once `publish_alert` returns, nothing targeted can be lost.

`check_alert` turns a raw body into an alert with every problem reported at once (the input rules are
`notifier.input_rules`: regions and groups by code or by catalogue name, stored as codes).

Every way in (API, `notifier publish`, CAP documents) comes through `publish_alert`: the alert records its
department (`notifier.departments`), waits for approval when `[approval]` holds it (`notifier.approval`), and its
publication is one audit entry in the same transaction."""

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

from notifier.approval import holds
from notifier.audit import Actor
from notifier.cap.imports import CapImport
from notifier.config import ApprovalSettings
from notifier.departments import alert_department, may_read, readable
from notifier.errors import ConflictError, FieldError, InvalidInput, NotFoundError
from notifier.i18n import N_
from notifier.input_rules import CatalogueCodes, field_errors
from notifier.models import (
    Alert,
    AlertIn,
    AlertStatus,
    Level,
    MsgType,
    Policy,
    Severity,
    Urgency,
)
from notifier.states import Approval
from notifier.store import Store
from notifier.store.catalogue import Vouched
from notifier.store.records import AlertRow, KeyRecord
from notifier.targeting import targeting_of


def request_hash(alert: AlertIn) -> str:
    """Fingerprint of what was asked, to tell a retried request from a different one under the same key."""
    body = alert.model_dump(mode="json", exclude={"idempotency_key"})
    return hashlib.sha256(json.dumps(body, sort_keys=True, ensure_ascii=False).encode()).hexdigest()


INVALID_ALERT = N_("the alert cannot be published as given")  # N_: the CLI says it in its language


@dataclass(frozen=True, slots=True)
class _Checked:
    """What the catalogue says of an alert's references to it: codes for the names, and every problem."""

    regions: list[Any]
    groups: list[Any]
    errors: list[FieldError]
    topic_department: str | None  # the department responsible for the topic (None: no such topic)
    referenced: AlertRow | None  # the alert an update or cancel references


async def _check_references(store: Store, codes: CatalogueCodes, data: Mapping[str, Any],
                            key: KeyRecord | None) -> _Checked:
    """Topic, regions, groups (codes or catalogue names) and the referenced alert, read from a body that may not
    have passed the model yet (non-text values are left to the model's own errors). Another department's alert
    is, for a publisher, as unknown as one that does not exist."""
    errors: list[FieldError] = []
    topic_key = data.get("topic")
    topic_department = codes.departments.get(topic_key) if isinstance(topic_key, str) else None
    if isinstance(topic_key, str) and topic_department is None:
        errors.append(FieldError("topic", codes.unknown("topic", topic_key)))
    regions, region_errors = codes.resolve("region", _listed(data.get("regions")), "regions")
    groups, group_errors = codes.resolve("group", _listed(data.get("groups")), "groups")
    errors += region_errors + group_errors
    references = data.get("references")
    referenced = None
    if isinstance(references, str) and references:
        referenced = await store.get_alert(references)
        if referenced is not None and key is not None and not may_read(key, referenced):
            referenced = None
        if referenced is None:
            errors.append(FieldError("references", f"unknown alert {references!r}"))
        elif isinstance(topic_key, str) and referenced.topic != topic_key:
            errors.append(FieldError("references", "an update or cancel must stay on the topic of its alert"))
    return _Checked(regions, groups, errors, topic_department, referenced)


def _listed(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


async def check_alert(store: Store, data: Any, key: KeyRecord | None = None,
                      codes: CatalogueCodes | None = None) -> AlertIn:
    """A body (API, `notifier publish` file) as an alert, or InvalidInput listing every problem in one pass: the
    model's and the catalogue's together. Regions and groups may be codes or catalogue names (`城区`); the
    alert returned carries codes. `codes`: the catalogue, when the caller has read it for `publish_alert` too."""
    errors: list[FieldError] = []
    alert: AlertIn | None = None
    try:
        alert = AlertIn.model_validate(data)
    except ValidationError as exc:
        errors = field_errors(exc)
    checked = await _check_references(store, codes or await CatalogueCodes.load(store),
                                      data if isinstance(data, dict) else {}, key)
    named = {e.field for e in checked.errors}
    errors = [e for e in errors if e.field.split(".")[0] not in named] + checked.errors
    if errors or alert is None:
        raise InvalidInput(INVALID_ALERT, errors)
    return alert.model_copy(update={"regions": checked.regions, "groups": checked.groups})


async def publish_alert(store: Store, alert: AlertIn, publisher: KeyRecord | None, now: float | None = None, *,
                        cap: CapImport | None = None,
                        approval: ApprovalSettings | None = None,
                        codes: CatalogueCodes | None = None,
                        vouched: Vouched | None = None) -> tuple[AlertRow, bool]:
    """Store the alert with its targets and deliveries; returns (alert, created). Same idempotency key (in the
    alert's department) and body → the stored alert (created False); same key, different body → ConflictError.
    Region and group names are stored as their codes. An update supersedes the alert it references and a cancel
    cancels it (SPEC "Lifecycle"); a repeated cancel returns the first notice (created False). An alert that
    `approval` holds is stored `pending_approval`, sending nothing, its `targeted` what it would have now.

    `cap`: the CAP document `alert` was read from (`notifier.interchange`): the alert keeps its identity, origin
    and English words; an Exercise or Test is recorded with status `exercise` and targets no one (never held).
    `codes`: the catalogue as the caller read it for `check_alert` (read once per request: under a fan-out every
    read of many rows waits for the busy event loop once a row). `vouched`: `publisher` and `codes` were not read
    for this request (`keys.KnownKeys`): the store confirms them as it stores (catalogue.Unvouched: nothing
    stored)."""
    now = time.time() if now is None else now
    codes = codes or await CatalogueCodes.load(store)
    checked = await _check_references(store, codes,
                                      alert.model_dump(include={"topic", "regions", "groups", "references"}),
                                      publisher)
    alert = alert.model_copy(update={"regions": checked.regions, "groups": checked.groups})
    fingerprint = request_hash(alert)
    department = alert_department(publisher, checked.topic_department)
    try:
        if checked.errors:
            raise InvalidInput(INVALID_ALERT, checked.errors)
        assert department is not None  # noqa: S101 - an unknown topic is an error above
        if alert.msg_type is MsgType.UPDATE and checked.referenced is not None:
            alert = _inherit_area(alert, checked.referenced)
        row, release = _outbox(alert, department, publisher, fingerprint, now)
    except InvalidInput:
        # A repeated request is answered with what the first one stored, whatever has changed since (it expired,
        # say). Looked for only here: the store's transaction finds a repeat itself (`lifecycle.publish`), and a
        # read before it was one more turn of a busy event loop on every first request with a key — a CAP
        # document's always has one.
        if alert.idempotency_key and department is not None:
            existing = await store.alert_by_idempotency_key(department, alert.idempotency_key)
            if existing is not None:
                return _same_or_conflict(existing, fingerprint, cap is not None), False
        raise
    if cap is not None:
        row = _from_cap(row, cap)
    if (approval is not None and row.status != AlertStatus.EXERCISE
            and holds(approval, row, len(codes.regions))):
        row = replace(row, status=AlertStatus.PENDING_APPROVAL.value, approval=Approval.PENDING.value)
    stored = await store.create_alert(row, targeting_of(row, checked.referenced, release), Actor.of_key(publisher),
                                      vouched)
    if stored.id == row.id:
        return stored, True
    if stored.idempotency_key is not None and stored.idempotency_key == row.idempotency_key:
        # a concurrent request with the key won the race
        return _same_or_conflict(stored, fingerprint, cap is not None), False
    return stored, False  # a repeated cancel: the first one's notice


def _outbox(alert: AlertIn, department: str, publisher: KeyRecord | None, fingerprint: str,
            now: float) -> tuple[AlertRow, float]:
    """The alert's row, and when it is released."""
    scheduled = alert.scheduled_at.timestamp() if alert.scheduled_at else None
    expires = alert.expires_at.timestamp() if alert.expires_at else None
    if expires is not None and expires <= now:
        raise InvalidInput("the alert has already expired", [FieldError("expires_at", "must be in the future")])
    release = max(now, scheduled or now)
    row = AlertRow(
        id=uuid.uuid4().hex, topic=alert.topic, msg_type=alert.msg_type.value, references_id=alert.references,
        headline=alert.headline, body=alert.body, instruction=alert.instruction, severity=alert.severity.value,
        urgency=alert.urgency.value, level=alert.level.value if alert.level else None,
        target_regions=alert.regions, target_groups=alert.groups, policy=alert.effective_policy().value,
        fallback_after=alert.fallback_after, data=dict(alert.data), expires_at=expires, scheduled_at=scheduled,
        idempotency_key=alert.idempotency_key, request_hash=fingerprint, public=alert.public,
        status=(AlertStatus.SCHEDULED if release > now else AlertStatus.ACTIVE).value, targeted=0,
        publisher=publisher.id if publisher else None, department=department, created_at=now,
        cancelled_at=None)
    return row, release


def _from_cap(row: AlertRow, cap: CapImport) -> AlertRow:
    """The row of an alert read from a CAP document: known by the document's identity, with its English words;
    an exercise is only recorded (never public, never sent)."""
    en = cap.en
    row = replace(row, cap_sender=cap.origin.sender, cap_identifier=cap.origin.identifier,
                  cap_sent=cap.origin.sent.timestamp(), cap_origin=cap.origin.to_json(),
                  headline_en=en.headline if en else None, body_en=en.body if en else None,
                  instruction_en=en.instruction if en else None)
    if cap.exercise:
        row = replace(row, status=AlertStatus.EXERCISE.value, public=False)
    return row


def _inherit_area(update: AlertIn, referenced: AlertRow) -> AlertIn:
    """An update that names no regions (or no groups) keeps those of the alert it updates: it speaks to the same
    area unless it says otherwise — only named regions or groups beyond the original's widen it."""
    return update.model_copy(update={"regions": update.regions or referenced.target_regions,
                                     "groups": update.groups or referenced.target_groups})


def _same_or_conflict(existing: AlertRow, fingerprint: str, from_cap: bool = False) -> AlertRow:
    if existing.request_hash != fingerprint and from_cap:
        raise ConflictError("this CAP sender and identifier name a message published before with other content",
                            [FieldError("alert.identifier", "already used for another message of this sender")])
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
    if publisher is not None:
        readable(publisher, await store.get_alert(alert_id))
    elif await store.get_alert(alert_id) is None:
        raise NotFoundError(f"no alert {alert_id}")
    alert, notice, stopped = await store.cancel_alert(alert_id, publisher, now)
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
        department=row.department, created_at=created, cancelled_at=_dt(row.cancelled_at),
        approval=Approval(row.approval) if row.approval else None, decided_by=row.decided_by,
        decided_at=_dt(row.decided_at), decision_reason=row.decision_reason,
        headline_en=row.headline_en, body_en=row.body_en, instruction_en=row.instruction_en)
