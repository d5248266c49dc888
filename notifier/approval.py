"""Two-person release (SPEC "Departments and approval"): which alerts wait for a second pair of eyes, who may
decide on them, and the decisions.

- `holds(rules, alert, all_regions)`: an alert or update matching every rule given in `[approval]` (severity in
  `severities`; at least `min_regions` regions, an alert with none counting as all; topic matching a pattern of
  `topics`) is stored `pending_approval` and sends nothing. Cancels are never held: withdrawing a warning must not
  wait for anyone.
- Deciding: an admin key, or another key of the alert's department (a publisher of another department gets 404,
  as for any read of that department's alerts; the key that published it 403; viewers 403). The command line
  (`notifier approvals`, no key: actor `cli`) decides as an admin, but not on an alert the command line itself
  published — that is the same actor, and a second pair of eyes must be someone else's. Approving freezes the
  targets then and releases the alert (now, or at its schedule); rejecting records the reason. Only a pending
  alert can be decided (409 otherwise, also for the loser of two concurrent decisions).
- Nobody decides within `timeout` seconds: the dispatcher's sweep rejects it with reason `timeout`
  (`Store.reject_overdue_approvals`).
"""

from __future__ import annotations

import fnmatch
import time

from notifier.audit import Actor, AuditError, check_details
from notifier.config import ApprovalSettings
from notifier.departments import NO_SUCH_ALERT, readable
from notifier.errors import ConflictError, FieldError, Forbidden, InvalidInput, NotFoundError
from notifier.i18n import N_
from notifier.models import Role, Severity
from notifier.states import AlertStatus, MsgType
from notifier.store import Store
from notifier.store.records import AlertRow, KeyRecord
from notifier.targeting import targeting_of

AUTHOR_CANNOT_DECIDE = ("the key that published this alert cannot approve or reject it: another key of the "
                        "department, or an admin, must decide")
CLI_CANNOT_DECIDE = N_("this alert was published from the command line, so the command line cannot approve or "
                       "reject it: a key of its department, or an admin key, must decide (API or dashboard)")
VIEWER_CANNOT_DECIDE = "a viewer key cannot approve or reject alerts; needs admin or publisher"
NOT_PENDING = "alert {id} is {status}, not waiting for approval"
MAX_REASON = 500


def holds(rules: ApprovalSettings, alert: AlertRow, all_regions: int) -> bool:
    """Whether the alert must wait for approval before anything is sent."""
    if not rules.active() or alert.msg_type == MsgType.CANCEL:
        return False
    checks = []
    if rules.severities:
        checks.append(Severity(alert.severity) in rules.severities)
    if rules.min_regions is not None:
        checks.append((len(alert.target_regions) or all_regions) >= rules.min_regions)
    if rules.topics:
        checks.append(any(fnmatch.fnmatchcase(alert.topic, pattern) for pattern in rules.topics))
    return all(checks)


def require_decider(key: KeyRecord | None, alert: AlertRow | None) -> AlertRow:
    """The alert, if `key` (None: the command line, an admin) may approve or reject it (NotFound for another
    department's, Forbidden for its author or a viewer), and it still waits (Conflict)."""
    if key is None:
        if alert is None:
            raise NotFoundError(NO_SUCH_ALERT)
    else:
        alert = readable(key, alert)
        if key.role == Role.VIEWER:
            raise Forbidden(VIEWER_CANNOT_DECIDE)
    if alert.publisher == (key.id if key is not None else None):  # keyless publishes are the command line's
        raise Forbidden(AUTHOR_CANNOT_DECIDE if key is not None else CLI_CANNOT_DECIDE)
    if alert.status != AlertStatus.PENDING_APPROVAL:
        raise ConflictError(NOT_PENDING.format(id=alert.id, status=alert.status))
    return alert


def check_reason(reason: str) -> str:
    """A rejection's reason as the audit log will hold it: 1-500 characters, no contact (InvalidInput)."""
    text = reason.strip()
    problem = None
    if not text or len(text) > MAX_REASON:
        problem = f"give a reason of 1 to {MAX_REASON} characters"
    else:
        try:
            check_details({"reason": text})
        except AuditError:
            problem = "must not contain a phone number, email address or openid (it is kept in the audit log)"
    if problem:
        raise InvalidInput("the rejection cannot be recorded as given", [FieldError("reason", problem)])
    return text


async def approve_alert(store: Store, alert_id: str, key: KeyRecord | None, now: float | None = None) -> AlertRow:
    """Release a held alert: its targets are frozen now and its deliveries queued (for its schedule, if later),
    in one transaction with the status change and the audit entry."""
    now = time.time() if now is None else now
    alert = require_decider(key, await store.get_alert(alert_id))
    referenced = await store.get_alert(alert.references_id) if alert.references_id else None
    release = max(now, alert.scheduled_at or now)
    return await store.approve_alert(alert.id, targeting_of(alert, referenced, release), Actor.of_key(key), now)


async def reject_alert(store: Store, alert_id: str, key: KeyRecord | None, reason: str,
                       now: float | None = None) -> AlertRow:
    """Refuse a held alert with a reason; it ends `rejected`, having sent nothing."""
    now = time.time() if now is None else now
    text = check_reason(reason)
    alert = require_decider(key, await store.get_alert(alert_id))
    return await store.reject_alert(alert.id, text, Actor.of_key(key), now)


async def reject_overdue(store: Store, rules: ApprovalSettings, now: float) -> int:
    """Held alerts older than `timeout` are rejected with reason `timeout`; returns how many."""
    return await store.reject_overdue_approvals(now - rules.timeout, now)
