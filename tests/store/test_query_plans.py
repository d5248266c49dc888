"""Queries whose cost must not grow with what the store has kept (SQLite's plans; its planner has no statistics).

Every record of accepted sends asks whether reports for its provider ids came first; reports that never match (a
verification code's, another system's on a shared account) are kept for a week: the question is answered by a search
a provider id, not by reading every report kept (migration 0017). A person's deliveries are found alert by alert,
never by reading every delivery (migration 0018 dropped the index that led with the person). The people a batch's
proxies list are found by their own rows' key, not among every row of the alert (three alerts to 20,000 people:
3.3 s a batch of 500 on the single writer, wherever anyone is assisted). A report naming a number of a whole
request (an Aliyun BizId) finds its row from the number's contact, not among the request's every row."""

from __future__ import annotations

import time

import pytest

from channels.base import Receipt
from notifier.service import Service
from notifier.states import DeliveryStatus
from notifier.store.assisted import listed, told
from notifier.store.db import SQLITE, as_list, as_rows
from notifier.store.queue import sends_under_way
from notifier.store.receipts import (
    APPLIED,
    LIFE_SAFETY_PUSH,
    WAITING,
    apply_receipts,
    for_life_safety,
    reported_early,
)
from notifier.store.states import persons_deliveries
from tests.conftest import SettingsFactory, SubscriberFactory
from tests.store.recording import Recording, a_push, claimed_and_recorded, sent_by_sms, three_people, warned


async def test_the_early_report_check_searches_by_provider_id(service: Service) -> None:
    plan = [row[3] for row in await service.store.backend.reader.fetch(
        f"EXPLAIN QUERY PLAN {reported_early(SQLITE)}", as_list(["2433:1", "2433:2"]))]
    assert any(step.startswith("SEARCH receipts USING INDEX receipts_early (provider_message_id=?")
               for step in plan), plan
    assert not any(step.startswith("SCAN receipts") for step in plan), plan


async def test_a_kept_unmatched_report_is_found_by_its_provider_id_alone(service: Service) -> None:
    """The check names no channel: a report kept for any channel is found by its id, and no other id is."""
    await service.store.apply_receipts("sms", [Receipt("2433:7", False, "2433:7:FAIL", error="UNDELIV")],
                                       time.time())
    found = await service.store.backend.reader.fetch(reported_early(SQLITE), as_list(["2433:7", "2433:8"]))
    assert [row[0] for row in found] == ["2433:7"]


async def _plan(service: Service, sql: str, *params: object) -> list[str]:
    return [row[3] for row in await service.store.backend.reader.fetch(f"EXPLAIN QUERY PLAN {sql}", *params)]


async def test_a_persons_deliveries_are_searched_alert_by_alert(service: Service) -> None:
    items, joined = persons_deliveries("?")
    plan = await _plan(service, f"SELECT d.id FROM {items} WHERE {joined} AND d.status = 'queued'", "p1")  # noqa: S608 (ours)
    assert any(step.startswith("SEARCH d USING INDEX") and "(alert_id=? AND subscriber_id=?" in step
               for step in plan), plan
    assert not any(step.startswith("SCAN d") for step in plan), plan


async def test_a_proxys_people_are_searched_alert_by_alert_too(service: Service) -> None:
    """The person is a column of a table before them (a proxy's people, on a reply)."""
    items, joined = persons_deliveries("p.id", "n")
    plan = await _plan(service, f"SELECT n.id FROM assisted p CROSS JOIN {items} WHERE {joined} AND p.proxy_id = ?",  # noqa: S608
                       "proxy")
    assert any(step.startswith("SEARCH n USING INDEX") and "(alert_id=? AND subscriber_id=?" in step
               for step in plan), plan
    assert not any(step.startswith("SCAN n") for step in plan), plan


@pytest.mark.parametrize("query", ["told", "listed"])
async def test_the_people_a_batchs_proxies_list_are_searched_by_their_own_rows(service: Service, query: str) -> None:
    """Accepted sends' proxies' people (`told`), and the people each claimed proxy is to tell (`listed`)."""
    pairs = [("d1", 1.0), ("d2", 2.0)] if query == "told" else [("a1", "p1"), ("a1", "p2")]
    plan = await _plan(service, (told if query == "told" else listed)(SQLITE), as_rows(pairs))
    searched = [step for step in plan if step.startswith("SEARCH n ")]
    assert any("(alert_id=? AND subscriber_id=? AND channel=?)" in step for step in searched), plan
    assert all(step.endswith(("(alert_id=? AND subscriber_id=? AND channel=?)", "(id=?)")) for step in searched), plan
    assert not any(step.startswith("SCAN ") and "VIRTUAL TABLE" not in step for step in plan), plan


async def test_a_push_of_reports_reads_every_table_by_key(make_settings: SettingsFactory) -> None:
    """A push's reports kept, read back in their order, stored, looked up (by a request's id and each number's
    contact; by their own ids) and settled: the deliveries, the reports and the contacts
    searched by key, never scanned; a report of a request's
    number finds its row from the number's contact, not among the request's every row."""
    async with three_people(make_settings()) as store:
        await warned(store, "fallback")
        async with store.backend.transaction() as db:
            await claimed_and_recorded(db, DeliveryStatus.SENT, "fallback")
            recording = Recording(db)
            applied = await apply_receipts(recording, "sms", await a_push(db), time.time(), b"k" * 32)
            assert applied.pushes[0][2] == [APPLIED] * 3
            plans = {sql: [row[3] for row in await db.fetch(f"EXPLAIN QUERY PLAN {sql}", *args)]
                     for sql, args in recording.runs}

    assert len(plans) >= 8  # kept, read back, stored, requests' alerts, by number, by id, delivered, failed, …
    for sql, plan in plans.items():
        made = {step.removeprefix("MATERIALIZE ") for step in plan if step.startswith("MATERIALIZE ")}
        scanned = [step for step in plan if step.startswith("SCAN ") and "VIRTUAL TABLE" not in step
                   and step != "SCAN report_pushes"]  # the waiting pushes, oldest first (by their key)
        assert all(step.removeprefix("SCAN ") in made for step in scanned), (sql, plan)  # a batch's own rows only
        assert not any("TEMP B-TREE" in step for step in plan), (sql, plan)  # nothing sorted
        # … nor every row of a channel (contacts, deliveries, reports: each searched by its key, from the batch)
        assert not any(step.startswith("SEARCH ") and step.endswith("(channel=?)") for step in plan), (sql, plan)
    number = next(plan for sql, plan in plans.items() if "contacts c" in sql)
    assert any(step.startswith("SEARCH c USING COVERING INDEX contacts_address") for step in number), number
    assert any(step.startswith("SEARCH d ") and "(alert_id=? AND subscriber_id=? AND channel=?)" in step
               for step in number), number


async def test_whether_sends_are_under_way_is_read_from_the_queues_own_indexes(service: Service) -> None:
    """Asked every 0.1 s while delivery reports wait: the leased and the due deliveries, each from its partial
    index (at most a claim's worth), never every delivery kept."""
    recording = Recording(service.store.backend.reader)
    await sends_under_way(recording, time.time(), 1000)
    [(sql, args)] = recording.runs
    plan = [row[3] for row in await service.store.backend.reader.fetch(f"EXPLAIN QUERY PLAN {sql}", *args)]
    assert any(step == "SCAN deliveries USING INDEX deliveries_leased" for step in plan), plan
    assert any(step == "SEARCH deliveries USING INDEX deliveries_due (priority>?)" for step in plan), plan
    assert not any(step == "SCAN deliveries" for step in plan), plan


async def test_whether_a_push_is_a_life_safety_one_is_read_by_keys(
        service: Service, make_subscriber: SubscriberFactory) -> None:
    """Asked of every push while a red warning awaits reports: the live alerts by their status, each looked up in the
    index of the life-safety rows awaiting their report, then the push's provider ids by theirs — never an alert's
    rows read for one still `sent`; and the life-safety pushes waiting are read from their own index."""
    await make_subscriber(contacts={"sms": "+8613800000304"})
    await sent_by_sms(service.store, "extreme", "m1")
    now = time.time()
    reader = service.store.backend.reader
    recording = Recording(reader)
    assert await for_life_safety(recording, "sms", [Receipt("m1", True, "r1")], now - 900)
    plans = [[row[3] for row in await reader.fetch(f"EXPLAIN QUERY PLAN {sql}", *args)]
             for sql, args in recording.runs]
    assert len(plans) == 2, recording.statements
    assert "SEARCH a USING INDEX alerts_expiry (status=?)" in plans[0], plans[0]
    assert "SEARCH d USING INDEX deliveries_awaiting_life_safety (alert_id=?)" in plans[0], plans[0]
    assert "SEARCH deliveries USING INDEX deliveries_provider (channel=? AND provider_message_id=?)" in plans[1]
    waiting = WAITING.format(only=LIFE_SAFETY_PUSH)
    plan = [row[3] for row in await reader.fetch(f"EXPLAIN QUERY PLAN {waiting}", 16)]
    assert plan == ["SCAN report_pushes USING INDEX report_pushes_life_safety"], plan
