"""Admin dashboard sessions (migration 0010): one row per signed-in browser, found by the SHA-256 of its id.

Idle and absolute lifetimes are the caller's (`web/admin/session.py`); the Store reads a session on the reader and
writes only to end an expired one or to move an old `seen_at`, so a dashboard polling every 2 s does not write on
every poll.
"""

from __future__ import annotations

from notifier.store.db import Db, Row

_COLUMNS = "key_hash, key_id, role, created_at, seen_at"


async def create(db: Db, id_hash: str, key_hash: str, key_id: str, role: str, now: float, *,
                 created_after: float, seen_after: float, most: int) -> None:
    """A new session; expired ones are deleted, and when `most` live sessions remain, the oldest sign-ins go."""
    await db.execute("DELETE FROM admin_sessions WHERE created_at <= ? OR seen_at <= ?", created_after, seen_after)
    live = int(await db.fetchval("SELECT COUNT(*) FROM admin_sessions"))
    if live >= most:
        await db.execute("DELETE FROM admin_sessions WHERE id_hash IN (SELECT id_hash FROM admin_sessions "
                         "ORDER BY created_at, id_hash LIMIT ?)", live - most + 1)
    await db.execute(f"INSERT INTO admin_sessions (id_hash, {_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?)",
                     id_hash, key_hash, key_id, role, now, now)


async def get(db: Db, id_hash: str) -> Row | None:
    """(key_hash, key_id, role, created_at, seen_at) of a session, live or not."""
    return await db.fetchrow(f"SELECT {_COLUMNS} FROM admin_sessions WHERE id_hash = ?", id_hash)


async def seen(db: Db, id_hash: str, now: float) -> None:
    await db.execute("UPDATE admin_sessions SET seen_at = ? WHERE id_hash = ? AND seen_at < ?", now, id_hash, now)


async def drop(db: Db, id_hash: str) -> int:
    return await db.execute("DELETE FROM admin_sessions WHERE id_hash = ?", id_hash)


async def drop_key(db: Db, key_hash: str) -> int:
    """End every session signed in with a key (revoked, or no longer allowed in)."""
    return await db.execute("DELETE FROM admin_sessions WHERE key_hash = ?", key_hash)
