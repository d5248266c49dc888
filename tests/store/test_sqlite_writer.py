"""SQLite's single writer: the dispatcher's routine claims and records are background work, so a publish waiting
for the writer goes before every background transaction queued ahead of it; the hot transactions run whole on the
writer's thread (`run`), all or nothing, queued most urgent first and taken one after another by that thread."""

from __future__ import annotations

import asyncio
import gc
import os
import sqlite3
import threading
import time
import traceback
import weakref
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest

from notifier.store.db import Db
from notifier.store.sqlite_db import BIG_TRANSACTION_ROWS, WRITER_CHECKPOINT_PAGES, LogHandOver, SqliteBackend
from tests.store.writers import writer_backend


async def test_a_waiting_writer_goes_before_queued_background_work(tmp_path: Path) -> None:
    """With the writer busy and three background transactions queued, a transaction asked for after them runs
    right after the one in progress; the background ones follow in their order."""
    backend = SqliteBackend(tmp_path / "writer.db")
    await backend.open()
    order: list[str] = []
    release, holding = asyncio.Event(), asyncio.Event()

    async def write(name: str, *, background: bool, hold: asyncio.Event | None = None) -> None:
        async with backend.transaction(background=background) as db:
            await db.fetchval("SELECT 1")
            order.append(name)
            if hold is not None:
                holding.set()
                await hold.wait()

    try:
        busy = asyncio.create_task(write("in progress", background=True, hold=release))
        await asyncio.wait([busy, asyncio.create_task(holding.wait())], timeout=10,
                           return_when=asyncio.FIRST_COMPLETED)
        assert holding.is_set(), "the first transaction did not start"
        queued = [asyncio.create_task(write(f"claim {i}", background=True)) for i in range(3)]
        await asyncio.sleep(0.05)  # the claims are queued for the writer
        publish = asyncio.create_task(write("publish", background=False))
        await asyncio.sleep(0.05)
        release.set()
        await asyncio.gather(busy, *queued, publish)
    finally:
        await backend.close()
    assert order == ["in progress", "publish", "claim 0", "claim 1", "claim 2"]


async def test_background_work_runs_when_nobody_else_waits(tmp_path: Path) -> None:
    """Background transactions alone run in the order they were asked for."""
    backend = SqliteBackend(tmp_path / "writer.db")
    await backend.open()
    order: list[int] = []

    async def write(i: int) -> None:
        async with backend.transaction(background=True) as db:
            await db.fetchval("SELECT 1")
            order.append(i)

    try:
        await asyncio.gather(*(write(i) for i in range(5)))
    finally:
        await backend.close()
    assert order == [0, 1, 2, 3, 4]


async def test_a_transaction_run_whole_commits_and_returns_its_value(backend: SqliteBackend) -> None:
    """`run` writes and reads on the writer's thread in one go; what it wrote is there afterwards."""

    async def write(db: Db) -> int:
        await db.executemany("INSERT INTO t (n) VALUES (?)", [(1,), (2,), (3,)])
        return int(await db.fetchval("SELECT SUM(n) FROM t"))

    assert await backend.run(write) == 6
    assert await backend.reader.fetchval("SELECT COUNT(*) FROM t") == 3


async def test_a_transaction_run_whole_that_fails_leaves_nothing(backend: SqliteBackend) -> None:
    """An error inside `run` rolls back everything it wrote, and the writer is free for the next one."""

    async def half(db: Db) -> None:
        await db.execute("INSERT INTO t (n) VALUES (1)")
        raise ValueError("half-way")

    with pytest.raises(ValueError, match="half-way"):
        await backend.run(half)
    assert await backend.reader.fetchval("SELECT COUNT(*) FROM t") == 0
    await backend.run(lambda db: db.execute("INSERT INTO t (n) VALUES (2)"))
    assert await backend.reader.fetchval("SELECT COUNT(*) FROM t") == 1


async def test_a_transaction_run_whole_may_not_await_anything_else(backend: SqliteBackend) -> None:
    """Work that waits for something besides its statements cannot run on the writer's thread: it is refused and
    rolled back, rather than left half-done."""

    async def waits(db: Db) -> None:
        await db.execute("INSERT INTO t (n) VALUES (1)")
        await asyncio.sleep(0)

    with pytest.raises(RuntimeError, match="awaited something besides its statements"):
        await backend.run(waits)
    assert await backend.reader.fetchval("SELECT COUNT(*) FROM t") == 0


def _holding(started: threading.Event, release: threading.Event) -> Callable[[Db], Awaitable[None]]:
    """Work that keeps the writer busy until `release` (it blocks the writer's thread, not the event loop)."""

    async def hold(db: Db) -> None:
        await db.execute("INSERT INTO t (n, name) VALUES (0, 'busy')")
        started.set()
        release.wait(10)

    return hold


def _named(name: str, done: list[str]) -> Callable[[Db], Awaitable[None]]:
    async def write(db: Db) -> None:
        await db.execute("INSERT INTO t (n, name) VALUES (1, ?)", name)
        done.append(name)

    return write


async def test_transactions_waiting_for_the_writer_run_most_urgent_first(backend: SqliteBackend) -> None:
    """While the writer is busy, a routine claim, two publishes and a red warning ask for it, in that order: the red
    warning's transaction runs next, then the publishes in their order, the routine claim last."""
    started, release, order = threading.Event(), threading.Event(), []
    busy = asyncio.create_task(backend.run(_holding(started, release)))
    assert await asyncio.to_thread(started.wait, 10)
    waiting = [asyncio.create_task(backend.run(_named("claim", order), background=True, yielding=True)),
               asyncio.create_task(backend.run(_named("publish 1", order))),
               asyncio.create_task(backend.run(_named("publish 2", order), yielding=True)),
               asyncio.create_task(backend.run(_named("red warning", order), urgent=True))]
    await asyncio.sleep(0.05)  # all four are waiting
    release.set()
    await asyncio.gather(busy, *waiting)
    assert order == ["red warning", "publish 1", "publish 2", "claim"]


async def test_a_red_warning_goes_first_though_other_work_was_waiting_for_another_process_before_it(
        backend: SqliteBackend) -> None:
    """Another process holds the file's write lock (`notifier serve` adding a large publish's rows beside a
    `notifier worker`); a transaction that does not give way (a push of delivery reports kept, say) is already
    waiting for it when a red warning's claim is queued: the red warning's runs first once the lock is let go."""
    other = sqlite3.connect(backend.path, isolation_level=None)
    other.execute("BEGIN IMMEDIATE")
    order: list[str] = []
    try:
        kept = asyncio.create_task(backend.run(_named("reports kept", order)))
        await asyncio.sleep(0.2)  # the writer's thread has taken it and waits for the other process's lock
        red = asyncio.create_task(backend.run(_named("red warning", order), urgent=True))
        await asyncio.sleep(0.2)
        assert order == []
    finally:
        other.execute("ROLLBACK")
        other.close()
    await asyncio.wait_for(asyncio.gather(kept, red), 10)
    assert order == ["red warning", "reports kept"]


async def test_a_transaction_waits_for_another_processs_lock_and_commits_once_it_is_let_go(
        backend: SqliteBackend) -> None:
    other = sqlite3.connect(backend.path, isolation_level=None)
    other.execute("BEGIN IMMEDIATE")
    order: list[str] = []
    try:
        publish = asyncio.create_task(backend.run(_named("publish", order)))
        await asyncio.sleep(0.2)
        assert order == []
    finally:
        other.execute("ROLLBACK")
        other.close()
    await asyncio.wait_for(publish, 10)
    assert [r[0] for r in await backend.reader.fetch("SELECT name FROM t")] == ["publish"]


async def test_a_transaction_driven_from_the_event_loop_goes_before_queued_background_work(
        backend: SqliteBackend) -> None:
    """A multi-statement transaction (a sweep) waiting for the writer is not held back by the routine claims queued
    before it: it runs right after the transaction in progress."""
    started, release, order = threading.Event(), threading.Event(), []
    busy = asyncio.create_task(backend.run(_holding(started, release)))
    assert await asyncio.to_thread(started.wait, 10)
    claims = [asyncio.create_task(backend.run(_named(f"claim {i}", order), background=True)) for i in range(3)]
    await asyncio.sleep(0.02)

    async def sweep() -> None:
        async with backend.transaction() as db:
            await db.execute("INSERT INTO t (n, name) VALUES (2, 'sweep')")
            order.append("sweep")

    sweeping = asyncio.create_task(sweep())
    await asyncio.sleep(0.05)
    release.set()
    await asyncio.gather(busy, *claims, sweeping)
    assert order == ["sweep", "claim 0", "claim 1", "claim 2"]


async def test_a_red_warning_waits_only_for_the_event_loop_transaction_in_progress(backend: SqliteBackend) -> None:
    """A multi-statement transaction holds the writer; routine claims are queued, another such transaction waits,
    then a red warning asks: once the first ends, the red warning's transaction runs before the other waiter and
    the claims."""
    order: list[str] = []
    holding, release = asyncio.Event(), asyncio.Event()

    async def sweep(name: str, hold: bool = False) -> None:
        async with backend.transaction() as db:
            await db.execute("INSERT INTO t (n, name) VALUES (2, ?)", name)
            if hold:
                holding.set()
                await release.wait()
            order.append(name)

    first = asyncio.create_task(sweep("sweep 1", hold=True))
    await asyncio.wait_for(holding.wait(), 10)
    claims = [asyncio.create_task(backend.run(_named(f"claim {i}", order), background=True)) for i in range(2)]
    await asyncio.sleep(0.02)
    second = asyncio.create_task(sweep("sweep 2"))
    await asyncio.sleep(0.02)
    red = asyncio.create_task(backend.run(_named("red warning", order), urgent=True))
    await asyncio.sleep(0.02)
    release.set()
    await asyncio.gather(first, *claims, second, red)
    assert order == ["sweep 1", "red warning", "sweep 2", "claim 0", "claim 1"]


async def test_queued_transactions_follow_each_other_without_a_turn_of_the_event_loop(
        backend: SqliteBackend) -> None:
    """Two transactions queued behind a busy writer both commit while the event loop is stuck on something else:
    the writer's thread takes the next without waiting for the loop to hand it over."""
    started, release, order = threading.Event(), threading.Event(), []
    busy = asyncio.create_task(backend.run(_holding(started, release)))
    assert await asyncio.to_thread(started.wait, 10)
    queued = [asyncio.create_task(backend.run(_named(f"record {i}", order), background=True)) for i in range(2)]
    await asyncio.sleep(0.02)
    release.set()
    time.sleep(0.5)  # noqa: ASYNC251 - the event loop is busy (a long callback), deliberately
    committed = list(order)
    await asyncio.gather(busy, *queued)
    assert committed == ["record 0", "record 1"]


async def test_a_queued_transaction_whose_caller_gave_up_is_not_run(backend: SqliteBackend) -> None:
    """A caller cancelled while its transaction waits for the writer leaves nothing behind."""
    started, release, order = threading.Event(), threading.Event(), []
    busy = asyncio.create_task(backend.run(_holding(started, release)))
    assert await asyncio.to_thread(started.wait, 10)
    given_up = asyncio.create_task(backend.run(_named("given up", order)))
    kept = asyncio.create_task(backend.run(_named("kept", order)))
    await asyncio.sleep(0.02)
    given_up.cancel()
    release.set()
    await asyncio.gather(busy, kept)
    assert order == ["kept"]
    assert await backend.reader.fetchval("SELECT COUNT(*) FROM t WHERE name = 'given up'") == 0


async def _write_pages(backend: SqliteBackend, transactions: int) -> None:
    """`transactions` of 400 KB each (100 rows of 4,000 random bytes), a moment apart."""
    for _ in range(transactions):
        async with backend.transaction() as db:
            await db.executemany("INSERT INTO pages VALUES (?)", [(os.urandom(4000),) for _ in range(100)])
        await asyncio.sleep(0.01)


@pytest.fixture
async def pages(tmp_path: Path) -> AsyncIterator[SqliteBackend]:
    backend = SqliteBackend(tmp_path / "wal.db")
    await backend.open()
    async with backend.transaction() as db:
        await db.execute("CREATE TABLE pages (body BLOB)")
    try:
        yield backend
    finally:
        await backend.close()


async def test_what_was_committed_is_copied_into_the_database_beside_the_writer(
        pages: SqliteBackend, tmp_path: Path) -> None:
    """8 MB committed — half of what makes the writer's own commit copy the log back — reach the database file
    itself soon after, copied by the process's checkpointer, not by any commit."""
    await _write_pages(pages, 20)
    async with asyncio.timeout(30):
        while (tmp_path / "wal.db").stat().st_size < 8_000_000:  # noqa: ASYNC110 - the checkpointer's progress
            await asyncio.sleep(0.05)


async def test_a_process_that_keeps_writing_keeps_its_write_ahead_log_bounded(
        pages: SqliteBackend, tmp_path: Path) -> None:
    """While 40 MB are written in transactions of 400 KB, the log is copied back and starts over: it never holds
    much more than the 16 MB past which the writer's own commit copies it back."""
    await _write_pages(pages, 100)
    assert (tmp_path / "wal.db-wal").stat().st_size < 20_000_000


async def _write_big(backend: SqliteBackend, rows: int) -> None:
    """One transaction run whole (as a fan-out is) of `rows` rows of 2,000 random bytes."""
    async def insert(db: Db) -> None:
        await db.executemany("INSERT INTO pages VALUES (?)", [(os.urandom(2000),) for _ in range(rows)])

    await backend.run(insert)


async def test_after_a_fan_out_sized_transaction_the_log_is_copied_back_and_stays_bounded(
        pages: SqliteBackend, tmp_path: Path) -> None:
    """A transaction of 12,000 rows (24 MB) reaches the database file soon after its commit, copied by the
    checkpointer; the 40 MB written after it in transactions of 400 KB reuse the log instead of growing it."""
    await _write_big(pages, BIG_TRANSACTION_ROWS + 2_000)
    async with asyncio.timeout(30):
        while (tmp_path / "wal.db").stat().st_size < 24_000_000:  # noqa: ASYNC110 - the checkpointer's progress
            await asyncio.sleep(0.05)
    for _ in range(100):
        await _write_big(pages, 200)
        await asyncio.sleep(0.01)
    assert (tmp_path / "wal.db-wal").stat().st_size < 30_000_000


def test_a_big_commit_leaves_the_log_to_the_checkpointer_until_it_has_caught_up(tmp_path: Path) -> None:
    """The writer's commits stop copying the log back from a big transaction's commit on, and copy it again only
    once a checkpoint pass that began after that commit has copied all of it — not one that began before."""
    woken: list[bool] = []
    hand_over = LogHandOver(lambda: woken.append(True))
    conn = sqlite3.connect(tmp_path / "log.db")

    def autocheckpoint() -> int:
        return int(conn.execute("PRAGMA wal_autocheckpoint").fetchone()[0])

    conn.execute(f"PRAGMA wal_autocheckpoint={WRITER_CHECKPOINT_PAGES}")
    assert not hand_over.before_commit(conn, BIG_TRANSACTION_ROWS - 1)
    assert autocheckpoint() == WRITER_CHECKPOINT_PAGES
    began_before = hand_over.pass_begins()
    assert hand_over.before_commit(conn, BIG_TRANSACTION_ROWS)
    hand_over.after_big_commit()
    assert (autocheckpoint(), woken) == (0, [True])
    hand_over.copied_all(began_before)  # a pass that could not have seen the big commit's pages
    hand_over.before_begin(conn)
    assert autocheckpoint() == 0
    hand_over.copied_all(hand_over.pass_begins())
    hand_over.before_begin(conn)
    assert autocheckpoint() == WRITER_CHECKPOINT_PAGES


async def test_a_store_closes_right_after_a_fan_out_sized_transaction(tmp_path: Path) -> None:
    """`notifier publish` to a whole district closes its store as soon as the publish has committed: the
    checkpointer, woken by that commit at that very moment, stops instead of keeping the process alive (asyncio's
    `wait_for` in Python 3.11 swallowed the cancellation of a wait that had just ended, and the CLI hung)."""
    for _ in range(3):
        backend = SqliteBackend(tmp_path / "closing.db")
        await backend.open()
        async with backend.transaction() as db:
            await db.execute("CREATE TABLE IF NOT EXISTS pages (body BLOB)")
        await _write_big(backend, BIG_TRANSACTION_ROWS)
        closing = asyncio.ensure_future(backend.close())
        done, _ = await asyncio.wait({closing}, timeout=30)  # not a timeout around close: it would be swallowed
        assert closing in done, "the store did not close"
        closing.result()


async def test_closing_a_store_does_not_swallow_its_callers_cancellation(tmp_path: Path) -> None:
    """A shutdown that cancels whatever is closing the store stops it there: the cancellation is not taken for
    the checkpointer's own."""
    backend = SqliteBackend(tmp_path / "cancelled.db")
    await backend.open()
    closing = asyncio.ensure_future(backend.close())
    await asyncio.sleep(0)  # it has cancelled the checkpointer and waits for it to stop
    closing.cancel()
    with pytest.raises(asyncio.CancelledError):
        await closing
    await backend.close()


async def _writer_statements(backend: SqliteBackend) -> list[str]:
    """Every statement the writer's connection runs from now on (SQLite's trace of it: observed, not changed)."""
    statements: list[str] = []
    assert backend._writer is not None
    await backend._writer.set_trace_callback(statements.append)
    return statements


def _insert(name: str) -> str:
    """`_named`'s statement as traced."""
    return f"INSERT INTO t (n, name) VALUES (1, '{name}')"  # noqa: S608 - compared, never run


async def _behind_busy(backend: SqliteBackend, *asks: Callable[[], Awaitable[Any]]) -> list[Any]:
    """Each of `asks` (a `backend.run`, in this order) queued while the writer is busy with `_holding`; once they
    all wait, the busy one ends: the busy one's outcome, then theirs (results or errors)."""
    started, release = threading.Event(), threading.Event()
    busy = asyncio.create_task(backend.run(_holding(started, release)))
    assert await asyncio.to_thread(started.wait, 10)
    queued = [asyncio.create_task(ask()) for ask in asks]
    await asyncio.sleep(0.05)
    release.set()
    return await asyncio.gather(busy, *queued, return_exceptions=True)


def _claims(backend: SqliteBackend, order: list[str]) -> list[Callable[[], Awaitable[Any]]]:
    """Two routine claims (`claim 0`, `claim 1`), to be asked for in that order."""
    return [lambda i=i: backend.run(_named(f"claim {i}", order), background=True, yielding=True) for i in range(2)]


def _after_busy(statements: list[str]) -> list[str]:
    """The transactions' bounds and inserts traced after the busy one's COMMIT."""
    shown = [s for s in statements if s in ("BEGIN IMMEDIATE", "COMMIT") or s.startswith("INSERT")]
    return shown[shown.index("COMMIT") + 1:]


async def test_small_transactions_queued_together_commit_together_each_all_or_nothing(
        grouping: SqliteBackend) -> None:
    """Three routine claims and a rate-bucket payment wait behind a busy writer; the second claim fails half-way.
    Queued together, they are written in one transaction (a group commit); the failing claim rolls it back and its
    caller hears its error, and the others run again and are committed together: their callers hear their results
    after that one COMMIT, and only their rows are there."""
    statements, order = await _writer_statements(grouping), []

    async def half(db: Db) -> None:
        await db.execute("INSERT INTO t (n, name) VALUES (1, 'claim 1')")
        raise ValueError("half-way")

    results = await _behind_busy(grouping, lambda: grouping.run(_named("claim 0", order), background=True,
                                                                 yielding=True),
                                 lambda: grouping.run(half, background=True, yielding=True),
                                 lambda: grouping.run(_named("claim 2", order), background=True, yielding=True),
                                 lambda: grouping.run(_named("bucket", order)))
    assert isinstance(results[2], ValueError)
    assert [r for i, r in enumerate(results) if i != 2] == [None] * 4
    assert [r[0] for r in await grouping.reader.fetch("SELECT name FROM t ORDER BY name")] == [
        "bucket", "busy", "claim 0", "claim 2"]
    # The busy one is small too: the others joined its transaction once it had done its work.
    assert [s for s in statements if s in ("BEGIN IMMEDIATE", "COMMIT", "ROLLBACK")] == [
        "BEGIN IMMEDIATE", "ROLLBACK", "BEGIN IMMEDIATE", "COMMIT"]


async def test_reports_applied_wait_for_every_claim_and_record_and_are_never_written_with_them(
        grouping: SqliteBackend) -> None:
    """While the writer is busy, delivery reports are queued to be applied (idle), then two routine claims: the
    claims go first, and the reports after, in a transaction of their own — a claim's caller never waits for their
    commit."""
    statements, order = await _writer_statements(grouping), []
    await _behind_busy(grouping, lambda: grouping.run(_named("reports", order), background=True, yielding=True,
                                                      idle=True),
                       *_claims(grouping, order))
    assert order == ["claim 0", "claim 1", "reports"]
    # The claims joined the busy one's group; the reports waited for its commit, and went alone.
    assert _after_busy(statements) == ["BEGIN IMMEDIATE", _insert("reports"), "COMMIT"]


async def test_a_red_warning_is_never_written_in_a_group(grouping: SqliteBackend) -> None:
    """Routine claims queued behind a busy writer, then a red warning: the red warning's transaction is its own —
    begun, written and committed before any claim is — and the claims follow together."""
    statements, order = await _writer_statements(grouping), []
    await _behind_busy(grouping, *_claims(grouping, order),
                       lambda: grouping.run(_named("red warning", order), urgent=True))
    assert order == ["red warning", "claim 0", "claim 1"]
    assert _after_busy(statements) == ["BEGIN IMMEDIATE", _insert("red warning"), "COMMIT",
                                       "BEGIN IMMEDIATE", _insert("claim 0"), _insert("claim 1"), "COMMIT"]


async def test_a_publish_is_never_written_in_a_group(grouping: SqliteBackend) -> None:
    """A routine publish (it gives way, and may be big) waits behind a busy writer with a routine claim: each is
    committed on its own, so that the claim's caller never waits for the publish's commit."""
    statements, order = await _writer_statements(grouping), []
    await _behind_busy(grouping, lambda: grouping.run(_named("publish", order), yielding=True),
                       lambda: grouping.run(_named("claim", order), background=True, yielding=True))
    assert order == ["publish", "claim"]
    assert _after_busy(statements) == ["BEGIN IMMEDIATE", _insert("publish"), "COMMIT",
                                       "BEGIN IMMEDIATE", _insert("claim"), "COMMIT"]


async def test_a_group_takes_in_more_only_for_as_long_as_a_commit_takes(tmp_path: Path) -> None:
    """Each transaction joining a group holds back the answers of those before it while it runs: a writer whose
    commits take no time at all (`group_for` 0) commits every queued transaction on its own."""
    async with writer_backend(tmp_path / "writer.db", group_for=0.0) as backend:
        statements = await _writer_statements(backend)
        await _behind_busy(backend, *_claims(backend, []))
    assert _after_busy(statements) == ["BEGIN IMMEDIATE", _insert("claim 0"), "COMMIT",
                                       "BEGIN IMMEDIATE", _insert("claim 1"), "COMMIT"]


async def test_every_transaction_of_a_group_hears_when_its_rollback_fails(grouping: SqliteBackend) -> None:
    """Two routine claims grouped behind a busy writer; the second fails and so does the group's ROLLBACK (an
    interrupt kept in force by a statement it left unfinished): both callers hear the error, neither waits for
    ever."""
    assert grouping._writer is not None
    conn = grouping._writer._conn
    left_open: list[sqlite3.Cursor] = []

    async def breaks(db: Db) -> None:
        cursor = conn.execute("SELECT 1 UNION ALL SELECT 2")
        cursor.fetchone()  # unfinished, and kept: SQLite keeps the interrupt in force while it is
        left_open.append(cursor)
        conn.interrupt()
        await db.execute("INSERT INTO t (name) VALUES ('second')")

    order: list[str] = []
    try:
        _, first, second = await asyncio.wait_for(_behind_busy(
            grouping, lambda: grouping.run(_named("claim 0", order), background=True, yielding=True),
            lambda: grouping.run(breaks, background=True, yielding=True)), timeout=10)
    finally:  # on the writer's thread, where it was made
        await grouping._writer._execute(lambda: [cursor.close() for cursor in left_open])  # type: ignore[no-untyped-call]
    assert isinstance(first, sqlite3.OperationalError) and isinstance(second, sqlite3.OperationalError)


async def test_a_refused_transaction_leaves_its_rows_to_reference_counting_not_to_the_cyclic_collector(
        tmp_path: Path) -> None:
    """A transaction run on the writer's thread that fails (or gives way to a red warning) hands its caller the
    error; once the caller is done with it, what the work held is freed at once — not kept in a cycle through the
    error's frames until a collector pass, which under a fan-out stopped the event loop for 8–19 ms."""
    class Rows:  # what a routine record holds: a thousand updates
        pass

    held: list[weakref.ref[Rows]] = []

    def work() -> Callable[[Db], Awaitable[None]]:
        rows = Rows()  # held by the work itself, as a record's updates are
        held.append(weakref.ref(rows))

        async def refused(db: Db) -> None:
            await db.fetchval("SELECT 1")
            raise LookupError(f"refused {type(rows).__name__}")

        return refused

    backend = SqliteBackend(tmp_path / "writer.db")
    await backend.open()
    gc.disable()
    try:
        with pytest.raises(LookupError, match="refused") as caught:
            await backend.run(work())
        assert "in refused" in "".join(traceback.format_exception(caught.value))  # its stack stays for a log
        del caught
        await backend.run(lambda db: db.fetchval("SELECT 1"))  # the writer's thread has moved on from it
        assert held[0]() is None
    finally:
        gc.enable()
        await backend.close()
