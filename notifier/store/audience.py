"""Freezing an alert's audience at publish (the outbox): its target set — with each target's region and groups as
they are now, the coverage denominator that later edits or deletions never change — and one delivery row per
target × usable channel, all by INSERT … SELECT inside the publishing transaction (no rows travel through Python,
so memory stays flat whatever the fan-out)."""

from __future__ import annotations

from typing import Any

from notifier.states import DeliveryStatus
from notifier.store.db import FLOAT, INT, TEXT, Db, as_list
from notifier.store.records import Targeting
from notifier.store.states import ACCEPTED, REACHED
from subscriptions.models import SubscriberStatus


def _match(db: Db, regions: list[str], groups: list[str]) -> tuple[str, list[Any]]:
    """Subscribers `s` in these regions and groups (empty: all), as a condition and its parameters."""
    clauses, params = [], []
    if regions:
        clauses.append(f"s.region IN {db.dialect.each()}")
        params.append(as_list(regions))
    if groups:
        clauses.append("EXISTS (SELECT 1 FROM subscriber_groups g WHERE g.subscriber_id = s.id "
                       f"AND g.group_code IN {db.dialect.each()})")
        params.append(as_list(groups))
    return " AND ".join(clauses) or "1 = 1", params


async def _resolve(db: Db, alert_id: str, t: Targeting) -> None:
    """Active subscribers of the topic who match the alert now, with their current groups. For an update: only
    those its wider regions or groups add, beside the frozen targets already copied."""
    where, params = _match(db, t.regions, t.groups)
    if t.widened_from is not None:
        before, before_params = _match(db, *t.widened_from)
        where, params = f"{where} AND NOT ({before})", [*params, *before_params]
    await db.execute(
        f"INSERT INTO alert_targets (alert_id, subscriber_id, region) SELECT {TEXT}, s.id, s.region "
        "FROM subscriptions sub JOIN subscribers s ON s.id = sub.subscriber_id "
        f"WHERE sub.topic = ? AND sub.min_severity <= ? AND s.status = '{SubscriberStatus.ACTIVE}' AND {where} "
        "AND NOT EXISTS (SELECT 1 FROM alert_targets x WHERE x.alert_id = ? AND x.subscriber_id = s.id)",
        alert_id, t.topic, t.min_severity_rank, *params, alert_id)
    frozen = ("AND NOT EXISTS (SELECT 1 FROM alert_targets r WHERE r.alert_id = ? "
              "AND r.subscriber_id = t.subscriber_id)") if t.from_alert is not None else ""
    await db.execute(
        "INSERT INTO alert_target_groups (alert_id, subscriber_id, group_code) "
        "SELECT t.alert_id, t.subscriber_id, g.group_code FROM alert_targets t "
        f"JOIN subscriber_groups g ON g.subscriber_id = t.subscriber_id WHERE t.alert_id = ? {frozen}",
        alert_id, *([t.from_alert] if t.from_alert is not None else []))


async def _copy_frozen(db: Db, alert_id: str, t: Targeting) -> None:
    """The referenced alert's frozen targets who still exist, under the region and groups it froze (a cancel: only
    those it reached or whose delivery was accepted)."""
    assert t.from_alert is not None  # noqa: S101 - the caller checked
    only = f"AND (r.{REACHED} OR r.{ACCEPTED})" if t.only_reached else ""
    await db.execute(
        f"INSERT INTO alert_targets (alert_id, subscriber_id, region) SELECT {TEXT}, r.subscriber_id, r.region "
        f"FROM alert_targets r JOIN subscribers s ON s.id = r.subscriber_id WHERE r.alert_id = ? {only} "
        "AND NOT EXISTS (SELECT 1 FROM alert_targets x WHERE x.alert_id = ? AND x.subscriber_id = r.subscriber_id)",
        alert_id, t.from_alert, alert_id)
    await db.execute(
        f"INSERT INTO alert_target_groups (alert_id, subscriber_id, group_code) SELECT {TEXT}, g.subscriber_id, "
        "g.group_code FROM alert_target_groups g JOIN alert_targets t ON t.alert_id = ? "
        "AND t.subscriber_id = g.subscriber_id WHERE g.alert_id = ? AND NOT EXISTS (SELECT 1 FROM "
        "alert_target_groups x WHERE x.alert_id = ? AND x.subscriber_id = g.subscriber_id)",
        alert_id, alert_id, t.from_alert, alert_id)


async def create_deliveries(db: Db, alert_id: str, t: Targeting, now: float) -> None:
    """One row per target (that has none yet) × usable channel, ranked by the subscriber's preference; under
    `fallback` only the first is queued and the rest wait as `skipped` until a failure (or a missing receipt)
    activates the next."""
    queued, skipped = DeliveryStatus.QUEUED, DeliveryStatus.SKIPPED
    await db.execute(
        "INSERT INTO deliveries (id, alert_id, subscriber_id, channel, position, status, priority, attempts, "
        f"next_attempt_at, created_at, updated_at) SELECT {db.dialect.new_id}, alert_id, subscriber_id, channel, "
        f"rank, CASE WHEN {TEXT} = 'all' OR rank = 1 THEN '{queued}' ELSE '{skipped}' END, {INT}, 0, {FLOAT}, "
        f"{FLOAT}, {FLOAT} FROM ("
        "  SELECT t.alert_id, t.subscriber_id, sc.channel, "
        "         ROW_NUMBER() OVER (PARTITION BY t.subscriber_id ORDER BY sc.position) AS rank "
        "  FROM alert_targets t "
        "  JOIN subscription_channels sc ON sc.subscriber_id = t.subscriber_id AND sc.topic = ? "
        "  JOIN contacts c ON c.subscriber_id = t.subscriber_id AND c.channel = sc.channel "
        "       AND c.verified_at IS NOT NULL AND c.disabled_at IS NULL "
        "  WHERE t.alert_id = ? AND NOT EXISTS (SELECT 1 FROM deliveries e WHERE e.alert_id = t.alert_id "
        "       AND e.subscriber_id = t.subscriber_id)) ranked",
        t.policy, t.priority, t.first_attempt_at, now, now, t.topic, alert_id)


async def fan_out(db: Db, alert_id: str, t: Targeting, now: float) -> int:
    """Freeze the target set and create the delivery rows; returns how many subscribers are targeted."""
    if t.from_alert is not None:  # the frozen targets first: they keep the region and groups they were frozen with
        await _copy_frozen(db, alert_id, t)
    if t.from_alert is None or t.widened_from is not None:
        await _resolve(db, alert_id, t)
    await create_deliveries(db, alert_id, t, now)
    return int(await db.fetchval("SELECT COUNT(*) FROM alert_targets WHERE alert_id = ?", alert_id))
