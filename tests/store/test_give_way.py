"""A red warning (or a cancel) does not wait for a routine publish to a whole city, nor for a bulk import, in this
process or another on the same file: on SQLite's single writer the routine work stops, rolls back and runs again
after it (notifier/store/give_way.py); nothing of either is lost."""

from __future__ import annotations

import asyncio
import json
import logging
import sqlite3
import sys
import threading
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

import pytest

from notifier.approval import approve_alert
from notifier.config import ApprovalSettings
from notifier.importing import ImportOptions, ImportProgress, import_bytes
from notifier.keys import create_key
from notifier.models import AlertIn, Role
from notifier.publish import cancel_alert, publish_alert
from notifier.service import Service
from notifier.states import Priority
from notifier.store.db import Db
from notifier.store.give_way import MAX_GIVE_WAYS, QUIET_SECONDS, UrgentSign
from notifier.store.records import AlertRow, AssistedRecord
from notifier.store.sqlite_db import GAVE_WAY, SqliteBackend
from notifier.subscribers import create_subscriber
from subscriptions.models import SubscriberIn
from tests.conftest import SubscriberFactory
from tests.crowd import sms_people
from tests.store.writers import writer_backend

ROOT = Path(__file__).resolve().parents[2]  # where `python -m tests.…` finds the tests package
# A statement that runs for a minute or two unless it is interrupted (bounded, so that a failure ends).
ENDLESS = ("WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < 1000000000) "
           "SELECT COUNT(*) FROM c")


async def _names(backend: SqliteBackend) -> list[str]:
    return [r[0] for r in await backend.reader.fetch("SELECT name FROM t ORDER BY rowid")]


class _LongFirstAttempt:
    """A transaction writing `name`, whose first attempt then runs ENDLESS (or `statement`) until it is stopped."""

    def __init__(self, name: str, statement: str = ENDLESS) -> None:
        self.name, self.attempts, self.inside = name, 0, threading.Event()
        self.statement = statement  # ENDLESS reads; a write interrupted rolls back its whole transaction

    async def __call__(self, db: Db) -> None:
        self.attempts += 1
        await db.execute("INSERT INTO t (name) VALUES (?)", self.name)
        if self.attempts == 1:
            self.inside.set()  # on the writer's thread
            await db.execute(self.statement)

    async def stopped_by_a_red_warning(self, backend: SqliteBackend) -> None:
        """Once it runs, a red warning asks for the writer and is written."""
        assert await asyncio.to_thread(self.inside.wait, 10), f"{self.name} did not start"
        await asyncio.wait_for(backend.run(lambda db: db.execute("INSERT INTO t (name) VALUES ('red')"),
                                           urgent=True), timeout=10)


async def test_an_urgent_transaction_stops_a_yielding_one_in_its_statement(
        backend: SqliteBackend, caplog: pytest.LogCaptureFixture) -> None:
    """A routine publish is in the middle of a long statement when a red warning asks for the writer: the red
    warning is written first, then the routine one from the start, whole."""
    caplog.set_level(logging.INFO, logger="notifier.store.sqlite_db")
    routine = _LongFirstAttempt("routine")
    yielding = asyncio.create_task(backend.run(routine, yielding=True))
    await routine.stopped_by_a_red_warning(backend)
    assert not yielding.done()  # it waits for a quiet moment before running again
    assert await _names(backend) == ["red"]
    await asyncio.wait_for(yielding, timeout=10)
    assert (routine.attempts, await _names(backend)) == (2, ["red", "routine"])
    assert [r.getMessage() for r in caplog.records if r.msg == GAVE_WAY] == [GAVE_WAY % (1, MAX_GIVE_WAYS)]


async def test_a_routine_batch_gives_way_and_runs_again_at_its_next_turn(backend: SqliteBackend) -> None:
    """A dispatcher's routine record (background work) is mid-statement when a red warning asks for the writer: the
    red warning is written first, and the record runs again at once — not after a quiet second, as a routine
    publish does — whole."""
    record = _LongFirstAttempt("routine batch")
    running = asyncio.create_task(backend.run(record, background=True, yielding=True))
    await record.stopped_by_a_red_warning(backend)
    await asyncio.wait_for(running, timeout=QUIET_SECONDS / 2)
    assert (record.attempts, await _names(backend)) == (2, ["red", "routine batch"])


async def test_a_yielding_transaction_nobody_asks_about_runs_once(backend: SqliteBackend) -> None:
    """Without life-safety work about, a routine publish is written in one go."""
    attempts = 0

    async def routine(db: Db) -> int:
        nonlocal attempts
        attempts += 1
        return await db.execute("INSERT INTO t (name) VALUES ('routine')")

    assert await backend.run(routine, yielding=True) == 1
    assert (attempts, await _names(backend)) == (1, ["routine"])


async def test_a_transaction_that_is_not_yielding_is_never_stopped(backend: SqliteBackend) -> None:
    """Life-safety work does not stop other life-safety work (or anything not marked yielding): it waits its
    turn."""
    inside, release = threading.Event(), threading.Event()

    async def first(db: Db) -> None:
        await db.execute("INSERT INTO t (name) VALUES ('first red')")
        inside.set()
        release.wait(10)  # on the writer's thread: holds the writer without a statement in progress
        await db.execute("INSERT INTO t (name) VALUES ('first red, second row')")

    running = asyncio.create_task(backend.run(first, urgent=True))
    assert await asyncio.to_thread(inside.wait, 10)
    second = asyncio.create_task(backend.run(lambda db: db.execute("INSERT INTO t (name) VALUES ('second red')"),
                                             urgent=True))
    await asyncio.sleep(0.05)
    release.set()
    await asyncio.wait_for(asyncio.gather(running, second), timeout=10)
    assert await _names(backend) == ["first red", "first red, second row", "second red"]


async def test_a_routine_transaction_right_after_an_urgent_one_does_not_give_way(
        backend: SqliteBackend, caplog: pytest.LogCaptureFixture) -> None:
    """A red warning has just been stored by this process (its sign for other processes is still fresh): a routine
    publish that starts at once is not stopped for it — nothing urgent waits any more."""
    caplog.set_level(logging.INFO, logger="notifier.store.sqlite_db")
    await backend.run(lambda db: db.execute("INSERT INTO t (name) VALUES ('red')"), urgent=True)
    await backend.run(lambda db: db.execute("INSERT INTO t (name) VALUES ('routine')"), yielding=True)
    assert await _names(backend) == ["red", "routine"]
    assert not [r for r in caplog.records if r.msg == GAVE_WAY]


async def test_a_routine_claim_gives_way_to_another_processs_red_warning_until_it_is_written(
        backend: SqliteBackend) -> None:
    """Another process on the same file waits for the writer with a red warning (it keeps its sign fresh, and waits
    in SQLite's lock): a routine claim of this process that begins meanwhile gives way, and does not take the
    writer again until that red warning is written — not ten times at once, finding it still waiting."""
    other = UrgentSign(backend.path)  # another process's renewals, not this process's own

    async def keep_renewing() -> None:
        while True:
            other.renew()
            await asyncio.sleep(0.005)

    def other_process_writes() -> None:
        conn = sqlite3.connect(backend.path, timeout=10)
        try:
            with conn:
                conn.execute("INSERT INTO t (name) VALUES ('red')")
        finally:
            conn.close()

    renewing = asyncio.create_task(keep_renewing())
    try:
        await asyncio.sleep(0.02)
        claim = asyncio.create_task(backend.run(lambda db: db.execute("INSERT INTO t (name) VALUES ('claim')"),
                                                background=True, yielding=True))
        await asyncio.sleep(0.2)  # the claim has begun and given way: it waits
        assert not claim.done()
        await asyncio.to_thread(other_process_writes)
    finally:
        renewing.cancel()
    await asyncio.wait_for(claim, timeout=10)
    assert await _names(backend) == ["red", "claim"]


async def test_a_routine_record_in_progress_gives_way_at_its_next_statement_to_another_processs_red_warning(
        backend: SqliteBackend) -> None:
    """A routine transaction of several statements has begun when another process's red warning starts waiting for
    the writer: it stops before its next statement and rolls back — nothing of its first statement stays — and runs
    again, whole, once that red warning is written; it does not hold the red warning for all its statements."""
    other = UrgentSign(backend.path)  # another process's renewals, not this process's own
    between, go_on, attempts = threading.Event(), threading.Event(), []

    async def record(db: Db) -> None:
        attempts.append(len(attempts) + 1)
        await db.execute("INSERT INTO t (name) VALUES ('first half')")
        if len(attempts) == 1:
            between.set()
            go_on.wait(10)  # on the writer's thread, between two statements
        await db.execute("INSERT INTO t (name) VALUES ('second half')")

    recording = asyncio.create_task(backend.run(record, background=True, yielding=True))
    assert await asyncio.to_thread(between.wait, 10)
    other.renew()  # the red warning elsewhere begins to wait
    go_on.set()
    await asyncio.wait_for(recording, timeout=10)
    assert attempts == [1, 2]
    assert await _names(backend) == ["first half", "second half"]


@pytest.mark.slow
async def test_an_urgent_transaction_waits_out_another_process_holding_the_writer(backend: SqliteBackend) -> None:
    """Another process holds the writer for 11 s without giving way (a bulk import, say) — longer than SQLite's
    busy_timeout of 10 s: a red warning's transaction is stored once it ends instead of failing with "database
    is locked"."""
    holding, done = threading.Event(), threading.Event()

    def other_process() -> None:
        conn = sqlite3.connect(backend.path, isolation_level=None)
        conn.execute("BEGIN IMMEDIATE")
        holding.set()
        time.sleep(11)
        conn.execute("ROLLBACK")
        conn.close()
        done.set()

    holder = threading.Thread(target=other_process)
    holder.start()
    try:
        assert await asyncio.to_thread(holding.wait, 10)
        await asyncio.wait_for(backend.run(lambda db: db.execute("INSERT INTO t (name) VALUES ('red')"), urgent=True),
                               timeout=60)
        assert done.is_set()  # it was not stored beside the other's transaction: it waited for its end
    finally:
        await asyncio.to_thread(holder.join)
    assert await _names(backend) == ["red"]


ROUTINE = AlertIn(topic="env.heavy-pollution", headline="公交票价调整", severity="minor", urgency="future")
RED = AlertIn(topic="disaster.weather-warning", headline="暴雨红色预警", severity="extreme", urgency="immediate",
              level="red")


async def _stored_order(service: Service, routine: Callable[[], Awaitable[AlertRow]],
                        urgent: Callable[[], Awaitable[object]]) -> list[str]:
    """`routine` (a fan-out to 20,000 people) under way when `urgent` comes in: the order in which the two were
    stored; the routine one's 20,000 delivery rows are checked."""
    finished: list[str] = []

    async def routine_then_note() -> str:
        stored = await routine()
        finished.append("routine")
        return stored.id

    task = asyncio.create_task(routine_then_note())
    await _until_writing(service)  # the routine fan-out is being written
    await urgent()
    finished.append("urgent")
    routine_id = await asyncio.wait_for(task, timeout=60)
    assert (await service.store.list_deliveries(routine_id, 1, None))[1] == 20_000  # every target has its row
    return finished


async def _red_warning_during(service: Service, make_subscriber: SubscriberFactory,
                              routine: Callable[[], Awaitable[AlertRow]]) -> list[str]:
    """The same with a red warning for one person published meanwhile."""
    await make_subscriber(contacts={"sms": "+8613800000001"}, topic="disaster.weather-warning")
    return await _stored_order(service, routine, lambda: publish_alert(service.store, RED, None))


@pytest.mark.slow
@pytest.mark.both_backends
async def test_a_red_warning_is_stored_while_a_routine_publish_to_many_is_under_way(
        service: Service, make_subscriber: SubscriberFactory) -> None:
    """20,000 people are being targeted by a routine disclosure when a red warning for one person comes in: the
    red warning is stored (and answered) first; the disclosure then reaches its every target all the same."""
    await service.store.bulk_create_subscribers(sms_people(20_000), [{}] * 20_000)

    async def publish() -> AlertRow:
        return (await publish_alert(service.store, ROUTINE, None))[0]

    assert await _red_warning_during(service, make_subscriber, publish) == ["urgent", "routine"]


@pytest.mark.slow
@pytest.mark.both_backends
async def test_a_red_warning_is_stored_while_a_routine_approval_to_many_is_under_way(
        service: Service, make_subscriber: SubscriberFactory) -> None:
    """The same while a held routine disclosure to 20,000 people is being released by its approval."""
    await service.store.bulk_create_subscribers(sms_people(20_000), [{}] * 20_000)
    publisher, _ = await create_key(service.store, Role.PUBLISHER, ["env.*"], department="市交通局")
    held, _ = await publish_alert(service.store, ROUTINE, publisher, approval=ApprovalSettings(topics=["env.*"]))
    assert held.status == "pending_approval"

    async def approve() -> AlertRow:
        return await approve_alert(service.store, held.id, None)

    assert await _red_warning_during(service, make_subscriber, approve) == ["urgent", "routine"]


async def _until_writing(service: Service) -> None:
    """Until a transaction in progress holds the SQLite file's writer (this process's or another's), rather than a
    guessed moment: a fan-out to 20,000 takes a tenth of a second on a fast machine. PostgreSQL has no single
    writer to hold: a moment for the transaction to begin."""
    backend = service.store.backend
    if not isinstance(backend, SqliteBackend):
        await asyncio.sleep(0.05)
        return
    conn = sqlite3.connect(backend.path, isolation_level=None, timeout=0)
    try:
        async with asyncio.timeout(30):
            while True:
                try:
                    conn.execute("BEGIN IMMEDIATE")
                except sqlite3.OperationalError:  # busy: taken
                    return
                conn.execute("ROLLBACK")
                await asyncio.sleep(0.001)
    finally:
        conn.close()


@pytest.mark.slow
async def test_a_red_warning_is_stored_while_another_process_publishes_to_many(
        service: Service, make_subscriber: SubscriberFactory) -> None:
    """`notifier publish` of a routine disclosure to 20,000 people runs in another process on the same SQLite file
    when a red warning comes in through this one: the red warning is stored first (the other process's publish
    gives way to it, then is stored whole) — it does not wait for all of it, nor fail with "database is locked"."""
    await service.store.bulk_create_subscribers(sms_people(20_000), [{}] * 20_000)
    await make_subscriber(contacts={"sms": "+8613800000001"}, topic="disaster.weather-warning")
    other = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "tests.publish_elsewhere", service.settings.database.url, cwd=ROOT,
        stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE)
    assert other.stdin is not None and other.stdout is not None
    try:
        assert await asyncio.wait_for(other.stdout.readline(), 60) == b"READY\n"
        other.stdin.write(b"go\n")
        await other.stdin.drain()
        assert await asyncio.wait_for(other.stdout.readline(), 60) == b"PUBLISHING\n"
        await _until_writing(service)  # its fan-out is being written
        red, _ = await publish_alert(service.store, RED, None)
        done = (await asyncio.wait_for(other.stdout.readline(), 60)).split()
    finally:
        if other.returncode is None:
            other.kill()
        await other.wait()
    assert done[0] == b"DONE"
    routine_id = done[1].decode()
    stored = [r[0] for r in await service.store.backend.reader.fetch("SELECT id FROM alerts ORDER BY rowid")]
    assert stored.index(red.id) < stored.index(routine_id)  # committed first
    assert (await service.store.list_deliveries(routine_id, 1, None))[1] == 20_000


@pytest.mark.slow
async def test_a_red_warning_is_stored_while_a_bulk_import_is_being_stored(
        service: Service, make_subscriber: SubscriberFactory) -> None:
    """A bureau's registry of 20,000 people (every thousandth with a webhook, its secret generated) is being stored
    when a red warning comes in: the red warning is stored first; the import then whole, every row once and each
    generated secret reported once."""
    await make_subscriber(contacts={"sms": "+8613800000001"}, topic="disaster.weather-warning")
    lines = [json.dumps({"contacts": {"sms": f"+86139{n:08d}",
                                      **({"webhook": f"http://127.0.0.1:9/hooks/{n}"} if n % 1000 == 0 else {})},
                         "region": "140402", "subscriptions": [{"topic": "env.heavy-pollution", "channels": ["sms"]}]})
             for n in range(20_000)]
    storing = threading.Event()  # set from the thread that stores the import

    def progress(p: ImportProgress) -> None:
        if p.phase == "storing":
            storing.set()

    before = await service.store.count_subscribers()
    importing = asyncio.create_task(import_bytes(
        service.store, "\n".join(lines).encode(), "ndjson",
        ImportOptions(label="registry.ndjson", allow_private_webhooks=True), progress))
    assert await asyncio.to_thread(storing.wait, 60)
    await publish_alert(service.store, RED, None)
    assert await service.store.count_subscribers() == before  # the import is not committed yet: it gave way
    report = await asyncio.wait_for(importing, timeout=120)
    assert report.stored == 20_000 and await service.store.count_subscribers() == before + 20_000
    assert len({secret.row for secret in report.webhook_secrets}) == len(report.webhook_secrets) == 20


@pytest.mark.slow
async def test_a_red_warning_is_stored_while_a_proxys_list_is_being_imported(
        service: Service, make_subscriber: SubscriberFactory) -> None:
    """A sub-district's list of 50,000 assisted people is being stored for one grid worker when a red warning comes
    in: the red warning is stored first, then the list whole."""
    await make_subscriber(contacts={"sms": "+8613800000001"}, topic="disaster.weather-warning")
    proxy, _ = await create_subscriber(service.store, SubscriberIn.model_validate({
        "contacts": {"sms": "13900000009"}, "region": "140402", "role": "proxy",
        "subscriptions": [{"topic": "env.heavy-pollution", "channels": ["sms"]}]}), allow_private_webhooks=False)
    people = [AssistedRecord(id=f"{n:032x}", label=f"{n}号楼", region="140402", groups=[], seq=n)
              for n in range(1, 50_001)]
    importing = asyncio.create_task(service.store.import_assisted([(proxy.id, people)]))
    await _until_writing(service)  # the list is being written
    await publish_alert(service.store, RED, None)
    assert not (await service.store.get_subscriber(proxy.id)).assists  # type: ignore[union-attr]  # not yet
    assert await asyncio.wait_for(importing, timeout=120) == 50_000


@pytest.mark.slow
@pytest.mark.both_backends
async def test_a_cancel_is_stored_while_a_routine_publish_to_many_is_under_way(
        service: Service, make_subscriber: SubscriberFactory) -> None:
    """A red warning is withdrawn (`POST /v1/alerts/{id}/cancel`) while a routine disclosure to 20,000 people is
    being stored: the cancel is stored first, as a cancel published through `POST /v1/alerts` would be."""
    await service.store.bulk_create_subscribers(sms_people(20_000), [{}] * 20_000)
    await make_subscriber(contacts={"sms": "+8613800000001"}, topic="disaster.weather-warning")
    red, _ = await publish_alert(service.store, RED, None)

    async def publish() -> AlertRow:
        return (await publish_alert(service.store, ROUTINE, None))[0]

    assert await _stored_order(service, publish, lambda: cancel_alert(service.store, red.id, None)) == [
        "urgent", "routine"]
    assert (await service.store.get_alert(red.id)).status == "cancelled"  # type: ignore[union-attr]


@pytest.mark.slow
@pytest.mark.both_backends
async def test_a_routine_publish_finishes_while_the_life_safety_loop_polls_in_vain(
        service: Service, caplog: pytest.LogCaptureFixture) -> None:
    """A worker's life-safety loop looks for red warnings every poll interval; with none to claim, its looks do
    not hold up a routine publish to 20,000 people: it never gives way."""
    caplog.set_level(logging.INFO, logger="notifier.store.sqlite_db")
    await service.store.bulk_create_subscribers(sms_people(20_000), [{}] * 20_000)
    routine = asyncio.create_task(publish_alert(service.store, ROUTINE, None))
    polls = 0
    while not routine.done() and polls < 1200:  # a minute of polls at most
        now = time.time()
        assert await service.store.claim("life-safety loop", now, now + 60, 100, int(Priority.LIFE_SAFETY)) == []
        polls += 1
        await asyncio.sleep(0.05)
    stored, _ = await asyncio.wait_for(routine, timeout=1)
    assert (await service.store.list_deliveries(stored.id, 1, None))[1] == 20_000
    assert not [r for r in caplog.records if r.msg == GAVE_WAY]


async def test_a_routine_batch_stopped_in_a_group_commit_loses_nothing_of_the_others(tmp_path: Path) -> None:
    """Two routine records wait behind a busy writer and are written in one transaction (a group commit); the
    second is in the middle of a long write when a red warning asks for the writer. SQLite rolls the whole
    transaction back, the first record's work with it: the red warning is written, then both records, each once."""
    async with writer_backend(tmp_path / "writer.db", group_for=60.0) as backend:  # joins however slow the machine
        await _stopped_in_a_group(backend)


async def _stopped_in_a_group(backend: SqliteBackend) -> None:
    started, release = threading.Event(), threading.Event()

    async def hold(db: Db) -> None:
        started.set()
        release.wait(10)

    runs: list[str] = []

    async def first(db: Db) -> None:
        runs.append("first")
        await db.execute("INSERT INTO t (name) VALUES ('first record')")

    never = f"INSERT INTO t (name) SELECT 'never' FROM ({ENDLESS}) WHERE random() = 0.5"  # noqa: S608 - constants
    second = _LongFirstAttempt("second record", statement=never)
    busy = asyncio.create_task(backend.run(hold))
    assert await asyncio.to_thread(started.wait, 10)
    records = [asyncio.create_task(backend.run(first, background=True, yielding=True)),
               asyncio.create_task(backend.run(second, background=True, yielding=True))]
    await asyncio.sleep(0.05)
    release.set()
    await second.stopped_by_a_red_warning(backend)
    await asyncio.wait_for(asyncio.gather(busy, *records), timeout=10)
    assert (runs, second.attempts) == (["first", "first"], 2)
    assert await _names(backend) == ["red", "first record", "second record"]


async def test_an_interrupt_that_came_after_a_transaction_is_forgotten_by_the_next_one_even_after_opening(
        tmp_path: Path) -> None:
    """An interrupt asked for a routine transaction just as it ended (between its last statement and its commit)
    is forgotten by the next statement: SQLite forgets one whenever a statement starts with no other unfinished.
    Nothing of the opening (its settings) is left unfinished, so this holds for the first transaction too."""
    opened = SqliteBackend(tmp_path / "fresh.db")
    await opened.open()
    try:
        assert opened._writer is not None
        conn = opened._writer._conn

        async def late_interrupt_then_read(db: Db) -> object:
            conn.interrupt()
            return await db.fetchval("SELECT 1")

        assert await opened.run(late_interrupt_then_read) == 1
    finally:
        await opened.close()


async def test_a_red_warning_stopped_by_an_interrupt_meant_for_another_runs_again(backend: SqliteBackend) -> None:
    """A red warning's transaction (it never gives way) is stopped mid-statement by an interrupt (one for a routine
    transaction landed on the next once in CI, kept in force by a statement left unfinished): it is not failed, it
    runs again, whole."""
    assert backend._writer is not None
    conn = backend._writer._conn  # the writer's connection: SQLite's interrupt is made to be called from any thread
    attempts = 0

    async def red(db: Db) -> str:
        nonlocal attempts
        attempts += 1
        await db.execute("INSERT INTO t (name) VALUES ('red')")
        if attempts == 1:
            threading.Timer(0.05, conn.interrupt).start()
            await db.fetchval(ENDLESS)
        return "written"

    assert await asyncio.wait_for(backend.run(red, urgent=True), timeout=10) == "written"
    assert (attempts, await _names(backend)) == (2, ["red"])


async def test_a_life_safety_look_with_nothing_due_does_not_wait_for_another_process_holding_the_writer(
        service: Service) -> None:
    """A worker's life-safety loop looks for red warnings every poll interval; while another process holds the
    writer (its slices of a large publish, back to back), a look that waited for it would hold up the red warning
    the worker is told of meanwhile. With nothing due, the look finds nothing without the writer."""
    assert isinstance(service.store.backend, SqliteBackend)
    other = sqlite3.connect(service.store.backend.path, isolation_level=None)
    other.execute("BEGIN IMMEDIATE")
    try:
        now = time.time()
        assert await asyncio.wait_for(service.store.claim("worker", now, now + 60, 10, Priority.LIFE_SAFETY),
                                      timeout=5) == []
    finally:
        other.execute("ROLLBACK")
        other.close()
