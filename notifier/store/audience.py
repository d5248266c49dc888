"""Freezing an alert's audience at publish (the outbox): its target set — with each target's region and groups as
they are now, the coverage denominator that later edits or deletions never change — and one delivery row per
target × usable channel, all by INSERT … SELECT inside the publishing transaction (no rows travel through Python,
so memory stays flat whatever the fan-out).

Two kinds of people are targeted, by the same statements over their own tables (`People`): subscribers, through
their subscriptions; and the people proxies assist (`assisted`), through their proxy's subscription to the topic
(its minimum severity too) and their own region and groups. An assisted person gets one `proxy` delivery, waiting
(`deferred`, due NEVER) until the proxy's message is accepted (`store/assisted.py`). That message is the proxy's
own delivery when the proxy is a target itself; otherwise relay rows over the proxy's channels for the topic
(`relay` = 1: queued, retried and fallen back like any delivery, counted nowhere). A person whose proxy has no
usable channel gets no delivery (no usable contact).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from notifier.states import DeliveryStatus
from notifier.store.assisted import anyone_assisted
from notifier.store.db import FLOAT, INT, TEXT, Db, as_list, id_prefix, planned_for
from notifier.store.records import Targeting
from notifier.store.states import ACCEPTED, NEVER, REACHED
from subscriptions.models import PROXY_CHANNEL, SubscriberStatus


@dataclass(frozen=True, slots=True)
class People:
    """Where one kind of targeted person lives: `source` joins them (alias `who`) to their subscribing
    subscriber `s` and its subscription `sub`; their groups are in `groups_table` by `owner`. `key` names their
    id as the source's index reads them in order (a subscriber's through the topic's subscriptions index: sorted by
    it, SQLite needs no sort of its own)."""

    who: str
    source: str
    groups_table: str
    owner: str
    key: str


SUBSCRIBERS = People("s", "subscriptions sub JOIN subscribers s ON s.id = sub.subscriber_id",
                     "subscriber_groups", "subscriber_id", "sub.subscriber_id")
ASSISTED = People("p", "assisted p JOIN subscribers s ON s.id = p.proxy_id "
                       "JOIN subscriptions sub ON sub.subscriber_id = s.id", "assisted_groups", "assisted_id", "p.id")


def _match(db: Db, people: People, regions: list[str], groups: list[str]) -> tuple[str, list[Any]]:
    """People in these regions and groups (empty: all), as a condition and its parameters."""
    clauses, params = [], []
    if regions:
        clauses.append(f"{people.who}.region IN {db.dialect.each()}")
        params.append(as_list(regions))
    if groups:
        clauses.append(f"EXISTS (SELECT 1 FROM {people.groups_table} g WHERE g.{people.owner} = {people.who}.id "
                       f"AND g.group_code IN {db.dialect.each()})")
        params.append(as_list(groups))
    return " AND ".join(clauses) or "1 = 1", params


def _matching(db: Db, people: People, t: Targeting) -> tuple[str, list[Any]]:
    """FROM … WHERE over one kind of people (alias `people.who`): those of the topic's active subscribers (or assisted
    by them) who match the alert now; for an update, only those its wider regions or groups add (the frozen targets
    are copied, not matched)."""
    where, params = _match(db, people, t.regions, t.groups)
    if t.widened_from is not None:
        before, before_params = _match(db, people, *t.widened_from)
        where, params = f"{where} AND NOT ({before})", [*params, *before_params]
    return (f"FROM {people.source} WHERE sub.topic = ? AND sub.min_severity <= ? "
            f"AND s.status = '{SubscriberStatus.ACTIVE}' AND {where}", [t.topic, t.min_severity_rank, *params])


def _frozen(t: Targeting) -> str:
    """FROM … WHERE over `r` (the referenced alert's frozen targets who still exist, as subscribers or as assisted
    people; one parameter: its id) — a cancel: only those it reached or whose delivery was accepted."""
    only = f"AND (r.{REACHED} OR r.{ACCEPTED})" if t.only_reached else ""
    return (f"FROM alert_targets r WHERE r.alert_id = ? {only} "
            "AND (EXISTS (SELECT 1 FROM subscribers s WHERE s.id = r.subscriber_id) "
            "OR EXISTS (SELECT 1 FROM assisted p WHERE p.id = r.subscriber_id))")


async def _resolve(db: Db, alert_id: str, t: Targeting, assisted: bool, *, first: bool) -> int:
    """Active subscribers of the topic who match the alert now, and the people their proxies assist who match it,
    with their current groups; how many targets it added. For an update: only those its wider regions or groups
    add, beside the frozen targets already copied. `first`: the alert has no targets yet (nobody to leave out)."""
    added = 0
    frozen = ("AND NOT EXISTS (SELECT 1 FROM alert_targets r WHERE r.alert_id = ? "
              "AND r.subscriber_id = t.subscriber_id)") if t.from_alert is not None else ""
    for people in (SUBSCRIBERS, ASSISTED) if assisted else (SUBSCRIBERS,):
        source, params = _matching(db, people, t)
        who = people.who
        unless = "" if first else (f" AND NOT EXISTS (SELECT 1 FROM alert_targets x WHERE x.alert_id = "
                                   f"{TEXT} AND x.subscriber_id = {who}.id)")
        # In the key's order, each row goes where the last one went in the key's index, not on a random page:
        # PostgreSQL, 100,000 targets, 606-823 -> 460-563 ms (the sort included); SQLite reads them in that order.
        added += await db.execute(
            f"INSERT INTO alert_targets (alert_id, subscriber_id, region) SELECT {TEXT}, {who}.id, {who}.region "
            f"{source}{unless} ORDER BY {people.key}", alert_id, *params, *([] if first else [alert_id]))
        await db.execute(
            "INSERT INTO alert_target_groups (alert_id, subscriber_id, group_code) "
            f"SELECT t.alert_id, t.subscriber_id, g.group_code FROM alert_targets t JOIN {people.groups_table} g "
            f"ON g.{people.owner} = t.subscriber_id WHERE t.alert_id = ? {frozen}",
            alert_id, *([t.from_alert] if t.from_alert is not None else []))
    return added


async def _copy_frozen(db: Db, alert_id: str, t: Targeting) -> None:
    """The referenced alert's frozen targets who still exist, under the region and groups it froze (a cancel: only
    those it reached or whose delivery was accepted)."""
    assert t.from_alert is not None  # noqa: S101 - the caller checked
    await db.execute(
        f"INSERT INTO alert_targets (alert_id, subscriber_id, region) SELECT {TEXT}, r.subscriber_id, r.region "
        f"{_frozen(t)} AND NOT EXISTS (SELECT 1 FROM alert_targets x WHERE x.alert_id = ? "
        "AND x.subscriber_id = r.subscriber_id)", alert_id, t.from_alert, alert_id)
    await db.execute(
        f"INSERT INTO alert_target_groups (alert_id, subscriber_id, group_code) SELECT {TEXT}, g.subscriber_id, "
        "g.group_code FROM alert_target_groups g JOIN alert_targets t ON t.alert_id = ? "
        "AND t.subscriber_id = g.subscriber_id WHERE g.alert_id = ? AND NOT EXISTS (SELECT 1 FROM "
        "alert_target_groups x WHERE x.alert_id = ? AND x.subscriber_id = g.subscriber_id)",
        alert_id, alert_id, t.from_alert, alert_id)


# Who gets delivery rows: the alert's targets; or, as relays, the proxies of its assisted targets who are not
# targets themselves (one parameter: the alert id, for the subquery).
_TARGETS = "alert_targets"
_RELAYS = ("(SELECT DISTINCT x.alert_id, p.proxy_id AS subscriber_id FROM alert_targets x "
           "JOIN assisted p ON p.id = x.subscriber_id WHERE x.alert_id = ? AND NOT EXISTS (SELECT 1 FROM "
           "alert_targets y WHERE y.alert_id = x.alert_id AND y.subscriber_id = p.proxy_id))")


@dataclass(frozen=True, slots=True)
class Span:
    """Targets by id: those after `after` (None: from the first) up to `through` included (None: to the last)."""

    after: str | None = None
    through: str | None = None

    def condition(self, *aliases: str) -> tuple[str, list[Any]]:
        """Its condition on the `subscriber_id` of each of `aliases`, and the condition's parameters. Said of every
        table joined by it, not of the targets alone: each is then read from its index over the span only."""
        bounds = [(op, at) for op, at in ((">", self.after), ("<=", self.through)) if at is not None]
        return ("".join(f"AND {alias}.subscriber_id {op} ? " for alias in aliases for op, _ in bounds),
                [at for _ in aliases for _, at in bounds])


EVERYONE = Span()


async def create_deliveries(db: Db, alert_id: str, t: Targeting, now: float, *, relays: bool = False,
                            first: bool = False, span: Span = EVERYONE) -> None:
    """One row per recipient (that has none yet) × usable channel, ranked by the subscriber's preference; under
    `fallback` only the first is queued and the rest wait as `skipped` until a failure (or a missing receipt)
    activates the next. Recipients: the targets (those in `span`), or with `relays` the proxies who are to tell
    targets. `first`: no recipient has a row yet (the fan-out began with the alert targeting nobody)."""
    sql, params = deliveries_statement(db, alert_id, t, now, relays=relays, first=first, span=span)
    await db.execute(sql, *params)


def deliveries_statement(db: Db, alert_id: str, t: Targeting, now: float, *, relays: bool = False,
                         first: bool = False, span: Span = EVERYONE) -> tuple[str, list[Any]]:
    """`create_deliveries`'s INSERT … SELECT and its parameters (a test reads its plan)."""
    queued, skipped = DeliveryStatus.QUEUED, DeliveryStatus.SKIPPED
    unless = "" if first else ("AND NOT EXISTS (SELECT 1 FROM deliveries e WHERE e.alert_id = t.alert_id "
                               "AND e.subscriber_id = t.subscriber_id)")
    within, bounds = (EVERYONE if relays else span).condition("t", "sc", "c")
    key, number = db.dialect.fan_out_numbers("t", table=not relays)
    goes_now = f"{TEXT} = 'all' OR rank = 1"  # the policy (a parameter each time): every channel, or the first
    return (
        "INSERT INTO deliveries (id, alert_id, subscriber_id, channel, position, status, priority, attempts, "
        f"next_attempt_at, created_at, updated_at, relay) SELECT {db.dialect.numbered_id(number)}, "
        "alert_id, subscriber_id, "
        f"channel, rank, CASE WHEN {goes_now} THEN '{queued}' ELSE '{skipped}' END, {INT}, 0, "
        # A `skipped` row is looked at for a silent fallback only once its predecessor is accepted (`fallback`).
        f"CASE WHEN {goes_now} THEN {FLOAT} ELSE {FLOAT} END, {FLOAT}, {FLOAT}, {int(relays)} FROM ("
        f"  SELECT t.alert_id, t.subscriber_id, sc.channel, {key} AS target_key, "
        "         ROW_NUMBER() OVER (PARTITION BY t.subscriber_id ORDER BY sc.position) AS rank "
        f"  FROM {_RELAYS if relays else _TARGETS} t "
        "  JOIN subscription_channels sc ON sc.subscriber_id = t.subscriber_id AND sc.topic = ? "
        # The usable contacts from their covering index (migration 0015), not each contact's table page;
        # PostgreSQL's (0021) gives them in the people's order to a whole city's merge joins (`planned_for`).
        f"  JOIN contacts c{db.dialect.indexed_by('contacts_usable')} ON c.subscriber_id = t.subscriber_id "
        "       AND c.channel = sc.channel "
        "       AND c.verified_at IS NOT NULL AND c.disabled_at IS NULL "
        f"  WHERE t.alert_id = ? {within}{unless}) ranked",
        [id_prefix(), t.policy, t.priority, t.policy, t.first_attempt_at, NEVER, now, now,
         *([alert_id] if relays else []), t.topic, alert_id, *bounds])


async def _create_proxy_deliveries(db: Db, alert_id: str, t: Targeting, now: float) -> None:
    """One `proxy` delivery per assisted target (that has none yet) whose proxy has a delivery of the alert to
    carry the list, waiting until that message is accepted."""
    await db.execute(
        "INSERT INTO deliveries (id, alert_id, subscriber_id, channel, position, status, priority, attempts, "
        f"next_attempt_at, created_at, updated_at) SELECT {db.dialect.numbered_id('ROW_NUMBER() OVER ()')}, "
        "t.alert_id, t.subscriber_id, "
        f"'{PROXY_CHANNEL}', 1, '{DeliveryStatus.DEFERRED}', {INT}, 0, {FLOAT}, {FLOAT}, {FLOAT} "
        "FROM alert_targets t JOIN assisted p ON p.id = t.subscriber_id WHERE t.alert_id = ? "
        "AND NOT EXISTS (SELECT 1 FROM deliveries e WHERE e.alert_id = t.alert_id AND e.subscriber_id = p.id) "
        "AND EXISTS (SELECT 1 FROM deliveries r WHERE r.alert_id = t.alert_id AND r.subscriber_id = p.proxy_id)",
        id_prefix(), t.priority, NEVER, now, now, alert_id)


@dataclass(frozen=True, slots=True)
class Frozen:
    """An alert's target set just frozen: how many it targets; whether no recipient had a delivery row of the alert
    before (`create_deliveries`'s `first`); whether anyone is assisted (their queries are skipped otherwise)."""

    targeted: int
    first: bool
    assisted: bool


async def freeze(db: Db, alert_id: str, t: Targeting, *, new: bool = False) -> Frozen:
    """Freeze the target set. `new`: the alert was inserted in this transaction (nothing to look for: a red
    warning's round trip less)."""
    # Targeting nobody yet (every fan-out but a notice's second, for late receivers): no target or delivery row of
    # the alert exists, so the statements need not look for one before each row they add. A relay or proxy row
    # exists only beside a target's. Measured, store alone, 300,000 SMS: targets 0.36 -> 0.24 s, deliveries
    # 1.24 -> 1.13 s, the publish 1.80 -> 1.57 s.
    first = new or await db.fetchval("SELECT 1 FROM alert_targets WHERE alert_id = ? LIMIT 1", alert_id) is None
    if t.from_alert is not None:  # the frozen targets first: they keep the region and groups they were frozen with
        await _copy_frozen(db, alert_id, t)
    # With nobody assisted (most deployments), their queries are skipped: measured ~0.25 s of a 50,000 fan-out.
    assisted = await anyone_assisted(db)
    fresh = first and t.from_alert is None  # every target is one this fan-out adds
    added = 0
    if t.from_alert is None or t.widened_from is not None:
        added = await _resolve(db, alert_id, t, assisted, first=fresh)
    # A fresh target set is what was just added; counted again, 100,000 rows took 21-34 ms on PostgreSQL.
    targeted = added if fresh else int(await db.fetchval(
        "SELECT COUNT(*) FROM alert_targets WHERE alert_id = ?", alert_id))
    return Frozen(targeted, first, assisted)


async def add_deliveries(db: Db, alert_id: str, t: Targeting, now: float, frozen: Frozen,
                         span: Span = EVERYONE) -> None:
    """The delivery rows of a target set frozen (`freeze`) in this transaction or an earlier one: of the targets
    in `span` (`frozen.targeted` of them); the relays' and the assisted people's rows, which join those of the
    whole set, with the span that reaches its end."""
    async with planned_for(db, frozen.targeted, "contacts"):  # a whole city's warning: hash joins (PostgreSQL)
        await create_deliveries(db, alert_id, t, now, first=frozen.first, span=span)
        if frozen.assisted and span.through is None:
            await create_deliveries(db, alert_id, t, now, relays=True, first=frozen.first)
            await _create_proxy_deliveries(db, alert_id, t, now)


async def fan_out(db: Db, alert_id: str, t: Targeting, now: float, *, new: bool = False) -> int:
    """Freeze the target set and create the delivery rows; returns how many subscribers are targeted. `new`: as
    for `freeze`."""
    frozen = await freeze(db, alert_id, t, new=new)
    await add_deliveries(db, alert_id, t, now, frozen)
    return frozen.targeted


async def would_target(db: Db, t: Targeting) -> int:
    """How many subscribers `fan_out` would target now, freezing nothing: what an alert held for approval tells
    its publisher and its approver."""
    count = 0
    if t.from_alert is not None:
        count += int(await db.fetchval(f"SELECT COUNT(*) {_frozen(t)}", t.from_alert))
    if t.from_alert is None or t.widened_from is not None:
        for people in (SUBSCRIBERS, ASSISTED):
            source, params = _matching(db, people, t)
            unfrozen = (f"AND NOT EXISTS (SELECT 1 FROM alert_targets x WHERE x.alert_id = ? "
                        f"AND x.subscriber_id = {people.who}.id)" if t.from_alert is not None else "")
            count += int(await db.fetchval(f"SELECT COUNT(*) {source} {unfrozen}", *params,
                                           *([t.from_alert] if t.from_alert is not None else [])))
    return count
