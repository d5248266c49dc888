"""Alert rows: storing one, reading and listing them (publishing, with what it does to other alerts, is in
`lifecycle`)."""

from __future__ import annotations

from typing import Any

from notifier.states import AlertStatus
from notifier.store.assisted import ALERT_HAS_PEOPLE
from notifier.store.catalogue import TOPIC_BESIDE, topic_beside
from notifier.store.db import Db, marks
from notifier.store.records import AlertRow
from notifier.store.rows import ALERT_COLUMNS, alert_params, alert_record

_INSERT = f"INSERT INTO alerts ({ALERT_COLUMNS}) VALUES ({marks(len(ALERT_COLUMNS.split(',')))})"


async def insert(db: Db, alert: AlertRow) -> bool:
    """Store the alert row; False when another alert of its department already holds its idempotency key (the
    caller returns that one). On PostgreSQL a concurrent publish with the same key waits on the unique index, then
    sees the first."""
    return await db.execute(_INSERT + " ON CONFLICT (department, idempotency_key) DO NOTHING",
                            *alert_params(alert)) == 1


async def get(db: Db, alert_id: str) -> AlertRow | None:
    row = await db.fetchrow("SELECT * FROM alerts WHERE id = ?", alert_id)
    return alert_record(row) if row is not None else None


async def to_send(db: Db, alert_id: str) -> tuple[AlertRow, dict[str, Any] | None, bool] | None:
    """What a worker needs of an alert, in one statement: its row, its topic (None: gone) and whether assisted
    people are among its targets; None when there is no such alert. Not three reads gathered: three connections,
    and three replies for a red warning's worker to take in on its busy event loop."""
    row = await db.fetchrow(f"SELECT a.*, {TOPIC_BESIDE}, {ALERT_HAS_PEOPLE} AS sending_assisted FROM alerts a "
                            "LEFT JOIN topics t ON t.key = a.topic WHERE a.id = ?", alert_id)
    if row is None:
        return None
    return alert_record(row), topic_beside(row), bool(row["sending_assisted"])


async def by_idempotency_key(db: Db, department: str | None, key: str) -> AlertRow | None:
    """The department's alert published with this idempotency key (keys are scoped per department)."""
    row = await db.fetchrow("SELECT * FROM alerts WHERE department = ? AND idempotency_key = ?", department, key)
    return alert_record(row) if row is not None else None


async def listing(db: Db, limit: int, before: tuple[float, str] | None, public_only: bool = False,
                  department: str | None = None) -> tuple[list[AlertRow], int]:
    """A page of alerts, newest first, and how many there are in all (of one department, when given)."""
    clauses, params = ["public = 1" if public_only else "1 = 1"], []
    if department is not None:
        clauses.append("department = ?")
        params.append(department)
    where = "WHERE " + " AND ".join(clauses)
    total = int(await db.fetchval(f"SELECT COUNT(*) FROM alerts {where}", *params))
    if before is None:
        rows = await db.fetch(f"SELECT * FROM alerts {where} ORDER BY created_at DESC, id DESC LIMIT ?",
                              *params, limit)
    else:
        rows = await db.fetch(f"SELECT * FROM alerts {where} AND (created_at < ? OR (created_at = ? AND id < ?)) "
                              "ORDER BY created_at DESC, id DESC LIMIT ?", *params, before[0], before[0], before[1],
                              limit)
    return [alert_record(r) for r in rows], total


async def pending(db: Db, department: str | None, limit: int) -> list[AlertRow]:
    """Alerts waiting for approval, oldest first (of one department, when given)."""
    where, params = "status = ?", [AlertStatus.PENDING_APPROVAL.value]
    if department is not None:
        where, params = where + " AND department = ?", [*params, department]
    rows = await db.fetch(f"SELECT * FROM alerts WHERE {where} ORDER BY created_at, id LIMIT ?", *params, limit)
    return [alert_record(r) for r in rows]
