"""Who an alert goes to, from its stored row: the `Targeting` the store resolves when it freezes the audience —
at publish, or at approval for an alert that waited (SPEC "Targeting", "Lifecycle")."""

from __future__ import annotations

from dataclasses import replace

from notifier.models import SEVERITY_RANK, Level, MsgType, Priority, Severity, Urgency, priority_of
from notifier.store.records import AlertRow, Targeting


def delivery_priority(alert: AlertRow) -> Priority:
    """The priority of the alert's deliveries — the claims' order, and what is life-safety work: a cancel's first of
    all (a stale warning must be withdrawn before anything routine), whatever the warning's severity; any other's by
    its severity, urgency and level."""
    if alert.msg_type == MsgType.CANCEL:
        return Priority.LIFE_SAFETY
    return priority_of(Severity(alert.severity), Urgency(alert.urgency), Level(alert.level) if alert.level else None)


def targeting_of(alert: AlertRow, referenced: AlertRow | None, release: float) -> Targeting:
    """Subscribers matching the alert when it is released; for an update, the referenced alert's frozen targets
    plus whom its wider regions or groups add; for a cancel, those the referenced alert reached, first of all."""
    base = Targeting(topic=alert.topic, min_severity_rank=SEVERITY_RANK[Severity(alert.severity)],
                     regions=alert.target_regions, groups=alert.target_groups, policy=alert.policy,
                     priority=int(delivery_priority(alert)), first_attempt_at=release)
    if referenced is None or alert.msg_type == MsgType.ALERT:
        return base
    if alert.msg_type == MsgType.UPDATE:
        return replace(base, from_alert=referenced.id,
                       widened_from=(referenced.target_regions, referenced.target_groups))
    return replace(base, min_severity_rank=0, regions=[], groups=[], from_alert=referenced.id, only_reached=True)
