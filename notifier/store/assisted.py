"""Assisted reach (SPEC "Reach without a smartphone"): the people a proxy — a community grid worker or a caregiver
— tells, and what becomes of each one's `proxy` delivery.

Who is targeted and which rows exist is decided at publish by `audience` (the one fan-out). Here:

    deferred (until the proxy's message is accepted) ──relayed──▶ sent ──confirmed──▶ delivered (reached)
        │                   └──every channel of the proxy failed──▶ failed
        └──cancel / expiry / erasure──▶ cancelled / expired

- `relayed` / `unrelayed`: called by `queue.record` with the results it writes. A proxy's message (its own
  delivery as a target, or a relay row) accepted on any channel makes the people it lists `sent`; when the
  proxy's every channel has failed, they fail too ("proxy not told").
- `confirm`: a POST to a person's confirm link, or an SMS reply of the person's number: `delivered` once; a repeat
  changes nothing and answers the same.
- Labels are personal data: read here for the proxy's own message and page, masked by the callers for admin views,
  deleted with their proxy (`forget_proxy`), never written to a log or the audit log.
"""

from __future__ import annotations

from collections.abc import Sequence

from notifier.errors import ConflictError, FieldError
from notifier.states import DeliveryStatus
from notifier.store.db import Db, Dialect, as_list, as_rows, lock_key
from notifier.store.records import AssistedRecord, AssistItem, Confirmation, DeliveryUpdate
from notifier.store.states import WAITING, is_, persons_deliveries, status_list
from subscriptions.models import PROXY_CHANNEL

DEFERRED, SENT, DELIVERED = DeliveryStatus.DEFERRED, DeliveryStatus.SENT, DeliveryStatus.DELIVERED
# A person's delivery that a confirmation may still complete: waiting for the proxy's message, or sent to it.
OPEN = status_list(DeliveryStatus.QUEUED, DEFERRED, SENT)
PROXY_NOT_TOLD = "proxy not told: every channel of the proxy failed"
PERSON_REMOVED = "subscriber deleted"  # the same words (and cause) as any erasure
_PROXY_ROW = f"channel = '{PROXY_CHANNEL}'"
# The tables a proxy's list fills and a fan-out reads (after a large list, their planner statistics are taken).
TABLES = ("assisted", "assisted_groups")


# ---------------------------------------------------------------- the lists


async def add(db: Db, proxy_id: str, people: Sequence[AssistedRecord], now: float) -> list[AssistedRecord]:
    """Store `people` for `proxy_id`, numbered after the proxy's last (numbers are never reused); returns them
    with their numbers. The caller checked that the proxy exists."""
    if not people:
        return []
    await lock_key(db, f"assisted:{proxy_id}")  # two imports for one proxy must not take the same numbers
    last = int(await db.fetchval("SELECT COALESCE(MAX(seq), 0) FROM assisted WHERE proxy_id = ?", proxy_id))
    numbered = [AssistedRecord(p.id, p.label, p.region, p.groups, last + i) for i, p in enumerate(people, 1)]
    await db.executemany("INSERT INTO assisted (id, proxy_id, seq, label, region, created_at) "
                         "VALUES (?, ?, ?, ?, ?, ?)",
                         [(p.id, proxy_id, p.seq, p.label, p.region, now) for p in numbered])
    await db.executemany("INSERT INTO assisted_groups (assisted_id, group_code) VALUES (?, ?)",
                         [(p.id, g) for p in numbered for g in p.groups])
    return numbered


async def of_proxies(db: Db, proxy_ids: Sequence[str]) -> dict[str, list[AssistedRecord]]:
    """The people of each proxy, in their numbers' order (raw labels: mask them before showing)."""
    out: dict[str, list[AssistedRecord]] = {i: [] for i in proxy_ids}
    if not proxy_ids:
        return out
    groups: dict[str, list[str]] = {}
    for r in await db.fetch(f"SELECT g.assisted_id, g.group_code FROM assisted_groups g JOIN assisted p ON p.id = "
                            f"g.assisted_id WHERE p.proxy_id IN {db.dialect.each()} ORDER BY g.group_code",
                            as_list(proxy_ids)):
        groups.setdefault(r[0], []).append(r[1])
    for r in await db.fetch(f"SELECT id, proxy_id, seq, label, region FROM assisted WHERE proxy_id IN "
                            f"{db.dialect.each()} ORDER BY seq", as_list(proxy_ids)):
        out[r["proxy_id"]].append(AssistedRecord(r["id"], r["label"], r["region"], groups.get(r["id"], []),
                                                 int(r["seq"])))
    return out


async def _stop(db: Db, where: str, params: Sequence[object], now: float) -> int:
    """Cancel the waiting `proxy` deliveries of the people `where` (over `assisted p`) selects."""
    return await db.execute(
        f"UPDATE deliveries SET status = '{DeliveryStatus.CANCELLED}', finished_at = ?, updated_at = ?, "
        f"last_error = '{PERSON_REMOVED}' WHERE {_PROXY_ROW} AND status IN {WAITING} AND subscriber_id IN "
        f"(SELECT p.id FROM assisted p WHERE {where})", now, now, *params)


async def remove(db: Db, proxy_id: str, assisted_id: str, now: float) -> bool:
    """Erase one person (label, groups) and stop their waiting deliveries; False when the proxy has no such
    person. Their frozen targets stay, so that past coverage does not change."""
    await _stop(db, "p.id = ? AND p.proxy_id = ?", (assisted_id, proxy_id), now)
    await db.execute("DELETE FROM assisted_groups WHERE assisted_id IN "
                     "(SELECT id FROM assisted WHERE id = ? AND proxy_id = ?)", assisted_id, proxy_id)
    return await db.execute("DELETE FROM assisted WHERE id = ? AND proxy_id = ?", assisted_id, proxy_id) > 0


async def forget_proxy(db: Db, proxy_id: str, now: float) -> None:
    """The proxy is deleted: its people go with it (explicitly, children first, as erasure does), and their
    waiting deliveries are cancelled."""
    await _stop(db, "p.proxy_id = ?", (proxy_id,), now)
    await db.execute("DELETE FROM assisted_groups WHERE assisted_id IN (SELECT id FROM assisted WHERE proxy_id = ?)",
                     proxy_id)
    await db.execute("DELETE FROM assisted WHERE proxy_id = ?", proxy_id)


# ---------------------------------------------------------------- the proxy's message


async def relayed(db: Db, accepted: Sequence[DeliveryUpdate], now: float) -> list[tuple[str, float]]:
    """Of these accepted deliveries, the proxies' messages: the people each lists become `sent` at its time.
    Returns (person's delivery id, time) of those, for their targets' `accepted_at`."""
    if not accepted or not await anyone_assisted(db):
        return []  # before any per-delivery work: this runs on the single writer's thread for every record
    rows = [(r[0], float(r[1])) for r in await db.fetch(
        told(db.dialect), as_rows((u.delivery_id, u.at) for u in accepted))]
    if rows:
        await db.execute(
            f"UPDATE deliveries SET status = '{SENT}', sent_at = u.at, attempts = attempts + 1, updated_at = ? "
            f"FROM {_pairs(db.dialect)} AS u WHERE deliveries.id = u.id AND {is_(DEFERRED, 'deliveries.')}",
            now, as_rows(rows))
    return rows


def told(dialect: Dialect) -> str:
    """`relayed`'s query (one parameter: the accepted deliveries' ids and times, `as_rows`): each waiting `proxy` row
    of the people their proxies list, at the earliest of those times."""
    return (f"WITH listed AS (SELECT d.alert_id, p.id AS person, u.at FROM {_pairs(dialect)} AS u JOIN deliveries d "
            f"ON d.id = u.id {_LISTED}), told AS (SELECT ({_THEIR_ROW}) AS id, at FROM listed) "
            "SELECT id, MIN(at) FROM told WHERE id IS NOT NULL GROUP BY id")


async def unrelayed(db: Db, failed: Sequence[str], now: float) -> int:
    """Of these failed deliveries, those that leave their proxy no channel still trying for the alert: the people
    the proxy was to be told about fail too (nobody can tell them). Returns how many."""
    if not failed or not await anyone_assisted(db):
        return 0
    trying = status_list(DeliveryStatus.QUEUED, DEFERRED, DeliveryStatus.SENDING, SENT, DELIVERED)
    return await db.execute(
        f"UPDATE deliveries SET status = '{DeliveryStatus.FAILED}', finished_at = ?, updated_at = ?, last_error = ? "
        f"FROM (SELECT DISTINCT ({_THEIR_ROW}) AS id FROM (SELECT d.alert_id, p.id AS person FROM deliveries d "
        f"{_LISTED} WHERE d.id IN {db.dialect.each()} AND NOT EXISTS (SELECT 1 FROM deliveries o "
        f"WHERE o.alert_id = d.alert_id AND o.subscriber_id = d.subscriber_id AND o.status IN {trying})) AS listed) "
        f"AS x WHERE deliveries.id = x.id AND {is_(DEFERRED, 'deliveries.')}", now, now, PROXY_NOT_TOLD,
        as_list(failed))


async def anyone_assisted(db: Db) -> bool:
    """Whether anyone is assisted at all: most deployments have no proxy, and the hot path then pays one probe."""
    return await db.fetchval("SELECT 1 FROM assisted LIMIT 1") is not None


# The people whom the proxies among a batch's deliveries `d` list (`listed`: alert_id, person), and each one's
# waiting `proxy` row, looked up by its key (alert, person, channel: one row at most) in a subquery of its own.
# Planned as one join, both planners searched the alert's rows by the alert alone for each delivery of the batch
# (the channel is the key's third column), PostgreSQL also every waiting row of every alert: three alerts to 20,000
# people, a batch of 500 took 3.3 s on SQLite and 1.4 s on PostgreSQL, in any store where anyone is assisted.
_LISTED = "JOIN assisted p ON p.proxy_id = d.subscriber_id"


def _proxy_row(alert: str, person: str) -> str:
    """A subquery: the id of the `proxy` row of `alert` (an expression) for `person`, by its whole key."""
    return f"SELECT n.id FROM deliveries n WHERE n.alert_id = {alert} AND n.subscriber_id = {person} AND n.{_PROXY_ROW}"


_THEIR_ROW = f"{_proxy_row('listed.alert_id', 'listed.person')} AND {is_(DEFERRED, 'n.')}"


def _pairs(dialect: Dialect) -> str:
    return dialect.records([("id", "TEXT"), ("at", "DOUBLE PRECISION")])


# Whether any assisted person is among the targets of the alert row `a` (then some of its recipients are proxies).
ALERT_HAS_PEOPLE = ("EXISTS (SELECT 1 FROM assisted p WHERE EXISTS (SELECT 1 FROM alert_targets t "
                    "WHERE t.alert_id = a.id AND t.subscriber_id = p.id))")


async def lists(db: Db, recipients: Sequence[tuple[str, str]]) -> dict[tuple[str, str], list[AssistItem]]:
    """For (alert id, subscriber id) pairs: the people each subscriber, as a proxy, is to tell about that alert,
    in their numbers' order (pairs with nobody are left out)."""
    out: dict[tuple[str, str], list[AssistItem]] = {}
    if not recipients:
        return out
    for r in await db.fetch(listed(db.dialect), as_rows(recipients)):
        out.setdefault((r[0], r[1]), []).append(AssistItem(r[2], r[3], int(r[4]), r[5], r[6]))
    return out


def listed(dialect: Dialect) -> str:
    """`lists`' query (one parameter: the (alert id, subscriber id) pairs, `as_rows`): each proxy's people, each with
    their `proxy` row of the alert looked up by its whole key — joined to the alert's rows instead, both planners
    searched them by the alert alone for each recipient of a claim."""
    return ("SELECT alert_id, subscriber_id, row_id, person, seq, label, (SELECT n.status FROM deliveries n "
            "WHERE n.id = row_id) FROM (SELECT x.alert_id, x.subscriber_id, p.id AS person, p.seq, p.label, "
            f"({_proxy_row('x.alert_id', 'p.id')}) AS row_id "
            f"FROM {dialect.records([('alert_id', 'TEXT'), ('subscriber_id', 'TEXT')])} AS x "
            "JOIN assisted p ON p.proxy_id = x.subscriber_id) AS found WHERE row_id IS NOT NULL ORDER BY seq")


# ---------------------------------------------------------------- confirmations


async def confirm(db: Db, delivery_id: str, now: float) -> Confirmation | None:
    """Mark the person of this `proxy` delivery told (reached), once; a repeat answers the same and changes
    nothing. None when there is no such delivery; Conflict when its alert is over (cancelled, expired)."""
    row = await db.fetchrow(
        f"SELECT id, alert_id, subscriber_id, status, delivered_at FROM deliveries WHERE id = ? AND {_PROXY_ROW}"
        f"{db.dialect.for_update}", delivery_id)
    if row is None:
        return None
    if row["status"] == DELIVERED:
        return Confirmation(row["id"], row["subscriber_id"], row["alert_id"], float(row["delivered_at"]), False)
    if await db.execute(
            f"UPDATE deliveries SET status = '{DELIVERED}', sent_at = COALESCE(sent_at, ?), delivered_at = ?, "
            f"finished_at = ?, updated_at = ?, attempts = {db.dialect.max_of('attempts', '1')} "
            f"WHERE id = ? AND status IN {OPEN}", now, now, now, now, delivery_id) == 0:
        raise ConflictError("this alert is over: nothing is left to confirm",
                            [FieldError("status", f"the delivery is {row['status']}")])
    await db.execute("UPDATE alert_targets SET reached_at = COALESCE(reached_at, ?), "
                     "accepted_at = COALESCE(accepted_at, ?) WHERE alert_id = ? AND subscriber_id = ?",
                     now, now, row["alert_id"], row["subscriber_id"])
    return Confirmation(row["id"], row["subscriber_id"], row["alert_id"], now, True)


async def confirm_by_reply(db: Db, channel: str, address: str, numbers: Sequence[int],
                           now: float) -> list[Confirmation]:
    """An SMS reply of people's numbers from a proxy's number: each person's newest open delivery is confirmed
    (the reply answers the latest message). Returns what was confirmed; unknown numbers are ignored."""
    if not numbers:
        return []
    items, joined = persons_deliveries("p.id", "n")
    rows = await db.fetch(
        f"SELECT n.id, p.id FROM contacts c JOIN assisted p ON p.proxy_id = c.subscriber_id CROSS JOIN {items} "
        f"WHERE {joined} AND n.{_PROXY_ROW} AND c.channel = ? AND c.address = ? "
        f"AND p.seq IN {db.dialect.each('INTEGER')} AND n.status IN {OPEN} ORDER BY n.created_at DESC, n.id",
        channel, address, as_list(numbers))
    newest: dict[str, str] = {}
    for r in rows:
        newest.setdefault(str(r[1]), str(r[0]))
    done = [await confirm(db, delivery_id, now) for delivery_id in newest.values()]
    return [c for c in done if c is not None]


# ---------------------------------------------------------------- the dashboard


async def not_yet_told(db: Db, alert_id: str, limit: int) -> list[tuple[str, int, str, str]]:
    """(proxy id, number, label, status) of the alert's people not confirmed told yet, by proxy and number (raw
    labels: mask them before showing)."""
    rows = await db.fetch(
        "SELECT p.proxy_id, p.seq, p.label, n.status FROM deliveries n JOIN assisted p ON p.id = n.subscriber_id "
        f"WHERE n.alert_id = ? AND n.{_PROXY_ROW} AND n.status <> '{DELIVERED}' ORDER BY p.proxy_id, p.seq LIMIT ?",
        alert_id, limit)
    return [(r[0], int(r[1]), r[2], r[3]) for r in rows]
