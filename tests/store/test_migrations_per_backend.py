"""A migration named for one back-end (`NNNN_name.sqlite.sql`) is applied on that back-end alone; the other records
its version with nothing to do, so both keep one sequence of versions."""

from __future__ import annotations

import pytest

from notifier.store import open_store
from notifier.store.migrate import migrations
from tests.conftest import SettingsFactory

pytestmark = pytest.mark.both_backends  # SQLite and PostgreSQL (tests/conftest.py)

SQLITE_ONLY = 15  # contacts_usable: the fan-out's contacts by index as SQLite reads them (PostgreSQL: 0021, its own)


async def test_a_version_for_one_back_end_is_recorded_on_both_and_applied_on_its_own(
        make_settings: SettingsFactory) -> None:
    store = await open_store(make_settings())
    try:
        versions = {int(r[0]) for r in await store.backend.reader.fetch("SELECT version FROM schema_migrations")}
        assert versions == {version for version, _ in migrations()}
        if store.dialect == "sqlite":
            found = await store.backend.reader.fetchval(
                "SELECT COUNT(*) FROM sqlite_master WHERE type = 'index' AND name = 'contacts_usable'")
        else:
            found = await store.backend.reader.fetchval(
                "SELECT COUNT(*) FROM pg_indexes WHERE indexname = 'contacts_usable'")
        assert found == (1 if store.dialect == "sqlite" else 0)
    finally:
        await store.close()


def test_the_other_back_end_reads_no_statement_in_it() -> None:
    assert "CREATE INDEX contacts_usable" in dict(migrations("sqlite"))[SQLITE_ONLY]
    assert dict(migrations("postgresql"))[SQLITE_ONLY] == ""
