"""A database as an older version of notifier left it: the migrations up to one version, applied and recorded as
`migrate.upgrade` would have, so that a migration test can put rows in it and then upgrade."""

from __future__ import annotations

from notifier.store import Store
from notifier.store.db import Db
from notifier.store.migrate import migrations


async def migrate_until(store: Store, db: Db, last: int) -> None:
    """Apply and record every migration up to version `last` (in `db`, a transaction of `store`'s back-end)."""
    await db.execute("CREATE TABLE schema_migrations (version INTEGER PRIMARY KEY, "
                     "applied_at DOUBLE PRECISION NOT NULL)")
    for version, sql in migrations(store.backend.dialect.name):
        if version <= last:
            if sql:  # a version named for the other back-end: recorded, nothing to do
                await store.backend.run_script(db, sql)
            await db.execute("INSERT INTO schema_migrations (version, applied_at) VALUES (?, 0)", version)
