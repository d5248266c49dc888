"""A warning to most of a city is planned for the whole city. PostgreSQL's statistics cannot know a target set
frozen a moment ago (they guess hundreds of rows for a city), so the fan-out's delivery rows are joined by hash and
sorted in memory when the targets are much of the contacts (`planned_for`); a small fan-out keeps the planner's own
choice, and the transaction's later statements plan as before. Either way every person gets the same rows."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from notifier.database import city_catalogue, seed_catalogue
from notifier.models import AlertIn
from notifier.publish import publish_alert
from notifier.store import Store, open_store
from notifier.store.audience import deliveries_statement
from notifier.store.db import POPULATION_ROWS, Db, planned_for
from notifier.store.records import Targeting
from tests.conftest import SettingsFactory
from tests.crowd import sms_people

pytestmark = pytest.mark.both_backends  # SQLite and PostgreSQL (tests/conftest.py)

CITY = POPULATION_ROWS  # the fewest people a fan-out is planned for as a population


@pytest.fixture
async def city(make_settings: SettingsFactory) -> AsyncIterator[Store]:
    """A store of CITY people, each subscribed to heavy-pollution warnings by SMS first and email second."""
    settings = make_settings()
    store = await open_store(settings)
    try:
        await seed_catalogue(store, city_catalogue(settings))
        await store.bulk_create_subscribers(sms_people(CITY, email=True), [{}] * CITY)
        yield store
    finally:
        await store.close()


async def _nested_loops(db: Db) -> str | None:
    """PostgreSQL's setting for nested-loop joins in this transaction (SQLite has none)."""
    if not db.dialect.population_plan:
        return None
    return str(await db.fetchval("SELECT current_setting('enable_nestloop')"))


async def test_a_warning_to_the_whole_city_gives_everyone_their_ranked_rows(city: Store) -> None:
    """Published to all of them (on PostgreSQL, planned for the population): each person is targeted once, with
    a queued SMS and a skipped email behind it, every row its own id."""
    alert, _ = await publish_alert(city, AlertIn(topic="env.heavy-pollution", headline="重污染天气预警",
                                                 policy="fallback"), None)
    rows = await city.backend.reader.fetch(
        "SELECT channel, position, status, COUNT(*) AS n, COUNT(DISTINCT id) AS ids FROM deliveries "
        "WHERE alert_id = ? GROUP BY channel, position, status ORDER BY position", alert.id)
    assert [tuple(r) for r in rows] == [("sms", 1, "queued", CITY, CITY), ("email", 2, "skipped", CITY, CITY)]
    assert await city.backend.reader.fetchval(
        "SELECT COUNT(*) FROM alert_targets WHERE alert_id = ?", alert.id) == CITY


async def test_a_fan_out_to_most_of_the_contacts_is_planned_for_them_and_no_further(city: Store) -> None:
    """Inside the block PostgreSQL joins by hash; the transaction's next statement is planned as before it."""
    async with city.backend.transaction() as db:
        before = await _nested_loops(db)
        async with planned_for(db, CITY, "contacts"):
            during = await _nested_loops(db)
        after = await _nested_loops(db)
    if city.backend.reader.dialect.population_plan:
        assert (before, during, after) == ("on", "off", "on")
    else:  # SQLite's planner has nothing to be told
        assert (before, during, after) == (None, None, None)


async def test_a_fan_out_to_a_few_keeps_the_planners_choice(city: Store) -> None:
    """A hundred people of ten thousand: nothing is set."""
    async with city.backend.transaction() as db:
        before = await _nested_loops(db)
        async with planned_for(db, CITY // 100, "contacts"):
            during = await _nested_loops(db)
    assert during == before


async def _plan(db: Db, sql: str, params: list[object]) -> str:
    """The plan of `sql` as its back-end's EXPLAIN words it (not run)."""
    if db.dialect.population_plan:
        return "\n".join(row[0] for row in await db.fetch(f"EXPLAIN {sql}", *params))
    return "\n".join(row[3] for row in await db.fetch(f"EXPLAIN QUERY PLAN {sql}", *params))


async def test_a_whole_citys_rows_read_the_usable_contacts_in_the_peoples_order(city: Store) -> None:
    """The delivery rows of a warning to everyone read each person's usable contacts from an index of their own.
    On PostgreSQL the targets, their channels and their contacts are merged in the people's order, each person's
    channels ranked with no sort of what was joined (the sort of a whole city's joined rows was a tenth of it)."""
    alert, _ = await publish_alert(city, AlertIn(topic="env.heavy-pollution", headline="重污染天气预警"), None)
    again = Targeting(topic="env.heavy-pollution", min_severity_rank=0, regions=[], groups=[], policy="all",
                      priority=0, first_attempt_at=alert.created_at)
    async with city.backend.transaction() as db, planned_for(db, CITY, "contacts"):
        plan = await _plan(db, *deliveries_statement(db, alert.id, again, alert.created_at, first=True))
    assert "contacts_usable" in plan, plan  # contacts_usable (SQLite), contacts_usable_by_person (PostgreSQL)
    if city.backend.reader.dialect.population_plan:
        assert "Hash" not in plan and "Nested Loop" not in plan, plan
        assert "Sort Key: t.subscriber_id, sc.\"position\"" not in plan, plan
