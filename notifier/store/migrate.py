"""The numbered migrations, one source for both back-ends (`migrations/NNNN_name.sql`), applied in order inside
one transaction; on PostgreSQL under an advisory lock, so that workers starting together on several hosts apply
each version once."""

from __future__ import annotations

from importlib import resources

from notifier.store.db import FLOAT, Backend, lock_key

_LOCK = "notifier:migrations"


def migrations() -> list[tuple[int, str]]:
    """(version, sql) of every bundled migration, in order."""
    found = []
    for entry in (resources.files("notifier.store") / "migrations").iterdir():
        if entry.name.endswith(".sql"):
            found.append((int(entry.name.split("_", 1)[0]), entry.read_text(encoding="utf-8")))
    return sorted(found)


async def upgrade(backend: Backend, now: float) -> list[int]:
    """Apply the migrations not yet applied; returns the versions applied now."""
    async with backend.transaction() as db:
        await lock_key(db, _LOCK)
        await db.execute("CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, "
                         "applied_at DOUBLE PRECISION NOT NULL)")
        done = {int(r[0]) for r in await db.fetch("SELECT version FROM schema_migrations")}
        applied = []
        for version, sql in migrations():
            if version in done:
                continue
            await backend.run_script(db, sql)
            await db.execute(f"INSERT INTO schema_migrations (version, applied_at) VALUES (?, {FLOAT})", version, now)
            applied.append(version)
    return applied
