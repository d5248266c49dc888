"""The numbered migrations, one source for both back-ends (`migrations/NNNN_name.sql`), applied in order inside
one transaction; on PostgreSQL under an advisory lock, so that workers starting together on several hosts apply
each version once. A version only one back-end needs is named for it (`NNNN_name.sqlite.sql`,
`NNNN_name.postgresql.sql`): the other records the version with nothing to do, so the numbers stay one sequence."""

from __future__ import annotations

from importlib import resources

from notifier.store.db import FLOAT, POSTGRES, SQLITE, Backend, lock_key

_LOCK = "notifier:migrations"


def migrations(dialect: str | None = None) -> list[tuple[int, str]]:
    """(version, sql) of every bundled migration, in order; for `dialect`, a version named for the other back-end
    has no statements."""
    found = []
    for entry in (resources.files("notifier.store") / "migrations").iterdir():
        if entry.name.endswith(".sql"):
            only = entry.name.removesuffix(".sql").rpartition(".")[2] if entry.name.count(".") > 1 else None
            if only not in (None, SQLITE.name, POSTGRES.name):  # a misspelt back-end would apply nowhere
                raise ValueError(f"migration {entry.name} names no back-end we have")
            sql = "" if dialect is not None and only is not None and only != dialect else entry.read_text("utf-8")
            found.append((int(entry.name.split("_", 1)[0]), sql))
    return sorted(found)


async def upgrade(backend: Backend, now: float) -> list[int]:
    """Apply the migrations not yet applied; returns the versions applied now."""
    async with backend.schema_change() as db:
        await lock_key(db, _LOCK)
        await db.execute("CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, "
                         "applied_at DOUBLE PRECISION NOT NULL)")
        done = {int(r[0]) for r in await db.fetch("SELECT version FROM schema_migrations")}
        applied = []
        for version, sql in migrations(backend.dialect.name):
            if version in done:
                continue
            if sql:  # a version named for the other back-end: recorded, nothing to do
                await backend.run_script(db, sql)
            await db.execute(f"INSERT INTO schema_migrations (version, applied_at) VALUES (?, {FLOAT})", version, now)
            applied.append(version)
    return applied
