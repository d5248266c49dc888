"""Catalogue deadlines in the store (SPEC "Catalogue deadlines"; migration 0008): when a topic's disclosures went
out, and the overdue notices sent once per topic and period across every worker.

- What counts as a disclosure: a public `alert` message (updates and cancels are follow-ups) that has gone out —
  its release time (`states.release`: the schedule when later than the creation) has come — and was not
  withdrawn: status active, expired or superseded, or scheduled with its time come (released by the next sweep).
  Cancelled, exercise and any other status do not count.
- A notice is claimed by one worker (`claim_owner`, `claimed_until`, at most `max_attempts` tries), sent, then
  marked sent; a claim whose worker died lapses and is taken again; a sent notice is never claimed again.
"""

from __future__ import annotations

from notifier.states import AlertStatus, MsgType
from notifier.store.db import Db
from notifier.store.states import release, status_list

_RELEASE = release("")
_COUNTED = status_list(AlertStatus.ACTIVE, AlertStatus.EXPIRED, AlertStatus.SUPERSEDED, AlertStatus.SCHEDULED)


async def release_times(db: Db, topic: str, since: float, until: float, now: float) -> list[float]:
    """Release times in [since, until) of the topic's disclosures that count, gone out by `now`, oldest first."""
    rows = await db.fetch(
        f"SELECT {_RELEASE} AS released FROM alerts WHERE topic = ? AND created_at < ? AND public = 1 "
        f"AND msg_type = '{MsgType.ALERT}' AND status IN {_COUNTED} AND {_RELEASE} >= ? AND {_RELEASE} < ? "
        f"AND {_RELEASE} <= ? ORDER BY released", topic, until, since, until, now)
    return [float(r["released"]) for r in rows]


async def claim_notice(db: Db, topic: str, period: str, department: str, due_at: float, owner: str, now: float,
                       until: float, max_attempts: int) -> bool:
    """Take the overdue notice of (topic, period) to send it: True unless it was sent, another worker holds it, or
    its tries are used up."""
    return await db.execute(
        "INSERT INTO compliance_notices (topic, period, department, due_at, claim_owner, claimed_until, attempts) "
        "VALUES (?, ?, ?, ?, ?, ?, 1) ON CONFLICT (topic, period) DO UPDATE SET "
        "claim_owner = excluded.claim_owner, claimed_until = excluded.claimed_until, "
        "attempts = compliance_notices.attempts + 1 WHERE compliance_notices.sent_at IS NULL "
        "AND compliance_notices.claimed_until <= ? AND compliance_notices.attempts < ?",
        topic, period, department, due_at, owner, until, now, max_attempts) == 1


async def finish_notice(db: Db, topic: str, period: str, owner: str, now: float, error: str | None,
                        retry_at: float) -> None:
    """Record the send of a claimed notice: sent, or the error and when it may be tried again."""
    if error is None:
        await db.execute("UPDATE compliance_notices SET sent_at = ?, last_error = NULL, claimed_until = NULL "
                         "WHERE topic = ? AND period = ? AND claim_owner = ?", now, topic, period, owner)
    else:
        await db.execute("UPDATE compliance_notices SET last_error = ?, claimed_until = ? "
                         "WHERE topic = ? AND period = ? AND claim_owner = ?", error, retry_at, topic, period, owner)


async def notices(db: Db, topic: str) -> list[tuple[str, float | None, int, str | None]]:
    """(period, sent_at, attempts, last_error) of a topic's overdue notices, by period."""
    rows = await db.fetch("SELECT period, sent_at, attempts, last_error FROM compliance_notices WHERE topic = ? "
                          "ORDER BY period", topic)
    return [(r["period"], r["sent_at"], int(r["attempts"]), r["last_error"]) for r in rows]
