"""The SQLite back-end's connections: WAL with synchronous=FULL (a committed delivery survives power loss),
`secure_delete` (deleted contacts are overwritten, not left in free pages), `BEGIN IMMEDIATE` for every write (no
SQLITE_BUSY upgrade deadlocks), one writer connection serialised by its queue and a lock, and readers (WAL readers
never block the writer): one for everything, one for the dispatcher's routine claims' rows (`bulk_read`: read after
their lease committed, so that the single writer is held for the lease alone, never ahead of a red warning's reads,
and unpacked on that reader's thread, not on the event loop), and the checkpointer's.

The hot write transactions (publish, claim, record) run whole on the writer connection's thread (`run`): their
statements follow each other there, without a turn of the event loop between two of them. Under a fan-out a turn
takes 2–15 ms, so a ten-statement record held the single writer for 80–160 ms (measured), and a red warning's
publish waited that long; run whole (and with packed reads, `Dialect.packed`), at most ~40 ms. Nor do two of them
wait for a turn between them: they are queued (most urgent first, background work last) and the writer's thread
takes the next as soon as one commits — handed over by the event loop, the writer sat idle ~0.8 ms (p50) between
two transactions, a quarter of a 300,000-SMS delivery. Small ones queued together commit together (GROUP_LIMIT).
Multi-statement transactions driven from the event loop
(`transaction`) take the writer's lock, which the queue's thread holds while it drains. The query modules
stay written once for both back-ends: `work` is the same coroutine, driven to its end on the thread over a `Db`
whose methods never suspend (`_ThreadDb`). A routine publish run so gives the writer up to life-safety work
(`give_way.py`)."""

from __future__ import annotations

import asyncio
import heapq
import itertools
import logging
import sqlite3
import threading
import time
import traceback
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine, Iterable, Sequence
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any, NamedTuple

import aiosqlite

from notifier.store.db import COMING, SQLITE, Db, QueueWatch, Row, T, hear
from notifier.store.give_way import MAX_GIVE_WAYS, GaveWay, GiveWay, UrgentSign, Waiters
from notifier.store.queued_signs import QueuedSigns
from notifier.waiting import woken

# How long a connection waits for another process's lock on the file before SQLITE_BUSY ("database is locked").
BUSY_TIMEOUT_MS = 10_000
_PRAGMAS = ("journal_mode=WAL", "synchronous=FULL", "foreign_keys=ON", f"busy_timeout={BUSY_TIMEOUT_MS}",
            "secure_delete=ON")  # deleted personal data is zeroed, not left in free pages
# The writer's queued transactions wait for another process's write lock a try every BUSY_STEP seconds (`_begin`).
BUSY_STEP = 0.001
_CHECKPOINT_TRIES = 20
# SQLite copies the WAL back into the database (a checkpoint, with an fsync of the database file) inside the commit
# of whichever transaction of a connection first takes the WAL past 1,000 pages: during a fan-out, every few dozen
# commits — now and then a red warning's publish or claim, 10–16 ms longer (measured). This process's writer leaves
# that to a connection of its own instead, every CHECKPOINT_EVERY; PASSIVE: it never waits for, nor holds up, a
# writer or a reader. The log starts over only when a transaction begins with all of it copied, which a writer busy
# without a pause may never allow: past WRITER_CHECKPOINT_PAGES (16 MB) the writer's own commit checkpoints again,
# copying little (the rest is copied already), so that the log is bounded whatever the load.
CHECKPOINT_EVERY = 0.25
CATCH_UP_PASSES = 8
WRITER_CHECKPOINT_PAGES = 4000
# A transaction run whole (`run`) that changed this many rows (a fan-out, an import) commits without copying the
# log back itself: its own pages are the whole log past WRITER_CHECKPOINT_PAGES (160 MB for 300,000 targets), and
# copying them in the commit held the publish's answer and the writer 0.7 s longer (measured, 300,000 SMS: publish
# 4.0 -> 3.3 s). The checkpointer, woken at once, copies them beside the writer; until it has caught up the
# writer's commits leave the log to it (one of theirs would otherwise copy the lot), then bound it again as above.
BIG_TRANSACTION_ROWS = 10_000
# How long a life-safety transaction keeps asking for a writer another process holds without giving way (another
# life-safety publish to a whole province, a bulk import): busy_timeout (10 s) at a time, so that a red warning is
# stored late rather than refused with "database is locked".
URGENT_PATIENCE = 120.0
STILL_BUSY = "life-safety work waits for the writer another process holds; asking again"
GAVE_WAY = "a routine publish gave the writer up to life-safety work (%d of at most %d times); it runs again"
# The dispatcher's routine claims and records give way to every red warning during a fan-out: told at DEBUG.
BATCH_GAVE_WAY = "a routine claim or record gave the writer up to life-safety work (%d of at most %d times)"

log = logging.getLogger(__name__)


class SqliteDb:
    """`Db` over one aiosqlite connection."""

    dialect = SQLITE

    def __init__(self, conn: aiosqlite.Connection) -> None:
        self.conn = conn

    async def execute(self, sql: str, *args: Any) -> int:
        cursor = await self.conn.execute(sql, args)
        return cursor.rowcount

    async def executemany(self, sql: str, rows: Iterable[Sequence[Any]]) -> None:
        await self.conn.executemany(sql, rows)

    async def fetch(self, sql: str, *args: Any) -> list[Row]:
        return list(await self.conn.execute_fetchall(sql, args))

    async def fetchrow(self, sql: str, *args: Any) -> Row | None:
        rows = await self.conn.execute_fetchall(sql, args)
        return next(iter(rows), None)

    async def fetchval(self, sql: str, *args: Any) -> Any:
        row = await self.fetchrow(sql, *args)
        return None if row is None else row[0]


class WriterBusy(sqlite3.OperationalError):
    """BEGIN IMMEDIATE found the database file locked by another process for all of busy_timeout."""


class _ThreadDb:
    """`Db` over the writer's own sqlite3 connection, used on its thread: every method finishes without
    suspending, so a transaction's coroutine runs to its end in one `send`."""

    dialect = SQLITE

    def __init__(self, conn: sqlite3.Connection, give_way: GiveWay | None = None) -> None:
        self.conn = conn
        self._give_way = give_way  # a yielding transaction's: it stops before its next statement when asked

    def _cursor(self, sql: str, args: Sequence[Any]) -> sqlite3.Cursor:
        if self._give_way is not None:
            self._give_way.check()
        return self.conn.execute(sql, args)

    async def execute(self, sql: str, *args: Any) -> int:
        return self._cursor(sql, args).rowcount

    async def executemany(self, sql: str, rows: Iterable[Sequence[Any]]) -> None:
        if self._give_way is not None:
            self._give_way.check()
        self.conn.executemany(sql, rows)

    async def fetch(self, sql: str, *args: Any) -> list[Row]:
        return list(self._cursor(sql, args).fetchall())

    async def fetchrow(self, sql: str, *args: Any) -> Row | None:
        row: Row | None = self._cursor(sql, args).fetchone()
        return row

    async def fetchval(self, sql: str, *args: Any) -> Any:
        row = await self.fetchrow(sql, *args)
        return None if row is None else row[0]


def _driven(work: Callable[[Db], Awaitable[T]], db: _ThreadDb) -> T:
    """`work` over `db`, run to its end in one `send` (its statements never suspend)."""
    coroutine = work(db)
    assert isinstance(coroutine, Coroutine)  # noqa: S101 - `work` is an async function
    try:
        coroutine.send(None)
    except StopIteration as done:
        result: T = done.value
        return result
    coroutine.close()
    raise RuntimeError("work run on a connection's thread awaited something besides its statements")


def _read_whole(conn: sqlite3.Connection, work: Callable[[Db], Awaitable[T]]) -> T:
    """On a reader's thread: `work`'s reads (each its own read transaction) and everything it does with their rows."""
    return _driven(work, _ThreadDb(conn))


class LogHandOver:
    """Who copies the write-ahead log back after a big transaction (BIG_TRANSACTION_ROWS): the writer's thread
    hands it to the checkpointer at the commit, the checkpointer hands it back once a pass that began after that
    commit has copied everything. Plain values, each written by one side only: `commits` by the writer's thread
    (big commits so far), `caught_up` by the checkpointer (the count its last complete pass began after)."""

    def __init__(self, wake: Callable[[], None]) -> None:
        self._wake = wake  # thread-safe: wakes the checkpointer
        self.with_checkpointer = False
        self.commits = 0
        self.caught_up = 0

    def before_begin(self, conn: sqlite3.Connection) -> None:
        """Writer's thread: the checkpointer has caught up since the last big commit: the writer bounds the log
        again."""
        if self.with_checkpointer and self.caught_up == self.commits:
            conn.execute(f"PRAGMA wal_autocheckpoint={WRITER_CHECKPOINT_PAGES}")
            self.with_checkpointer = False

    def before_commit(self, conn: sqlite3.Connection, changed: int) -> bool:
        """Writer's thread: whether this is a big transaction, whose commit (and the writer's commits after it,
        until the checkpointer has caught up) leave the log to the checkpointer."""
        if changed < BIG_TRANSACTION_ROWS:
            return False
        if not self.with_checkpointer:
            conn.execute("PRAGMA wal_autocheckpoint=0")
            self.with_checkpointer = True
        return True

    def after_big_commit(self) -> None:
        self.commits += 1
        self._wake()

    def pass_begins(self) -> int:
        """Checkpointer: the big commits its pass will see."""
        return self.commits

    def copied_all(self, seen: int) -> None:
        """Checkpointer: a pass that began after `seen` big commits copied everything in the log."""
        self.caught_up = seen


class _Outcome(NamedTuple):
    """What one queued transaction came to: its result, or why it did not commit."""

    item: _Queued
    result: Any
    exc: BaseException | None


class _Group(NamedTuple):
    """What a group commit (`_run_group`) came to: the outcomes to tell, the queued transactions whose work a later
    one's failure undid, to be run again (nobody was told anything), and how long its COMMIT took (None: none)."""

    outcomes: list[_Outcome]
    undone: list[_Queued]
    commit_seconds: float | None = None


def _run_group(conn: sqlite3.Connection, first: _Queued, more: Callable[[], _Queued | None],
               log_hand_over: LogHandOver | None = None, overtaken: Callable[[], bool] = lambda: False) -> _Group:
    """On the writer's thread: BEGIN IMMEDIATE; `first`'s work, then the work of each that `more` hands over until it
    hands over None (a group commit, GROUP_LIMIT), each run to its end; COMMIT; then their outcomes, which nobody is
    told before the COMMIT. One that fails, or that gives way (a yielding one asked to, GaveWay: the urgent one goes
    next), rolls back the whole transaction and comes to its error; the work of those before it is undone, to be
    run again (no savepoint for each: its two statements, every time, cost more than the rare failure's re-runs).
    WriterBusy when another process held the writer for all of busy_timeout (nothing was done); `first` undone,
    nothing begun, when `overtaken` while it waited for another process (`_begin`). `log_hand_over`: a big
    transaction's commit leaves copying the log back to the checkpointer."""
    if log_hand_over is not None:
        log_hand_over.before_begin(conn)
    changes = conn.total_changes
    try:
        if not _begin(conn, overtaken):
            return _Group([], [first])
    except WriterBusy:
        raise
    except sqlite3.OperationalError as exc:
        if _interrupted(exc):  # meant for a yielding one before it (`_stray_interrupt`): nothing ran, it runs again
            return _Group([], [first])
        raise
    done: list[_Outcome] = []
    item: _Queued | None = first
    while item is not None:
        outcome = _run_one(conn, item)
        if outcome.exc is not None:
            _roll_back(conn)
            if _stray_interrupt(outcome):  # it runs again: the interrupt was meant for a yielding one before it
                return _Group([], [o.item for o in done] + [item])
            return _Group([outcome], [o.item for o in done])
        done.append(outcome)
        item = more()
    try:
        big = log_hand_over is not None and log_hand_over.before_commit(conn, conn.total_changes - changes)
        committing = time.perf_counter()
        conn.execute("COMMIT")
        commit_seconds = time.perf_counter() - committing
    except BaseException as exc:
        _roll_back(conn)  # a COMMIT that failed (disk full, I/O) must not leave the writer inside the transaction
        return _Group([o._replace(result=None, exc=exc) for o in done], [])
    if big and log_hand_over is not None:
        log_hand_over.after_big_commit()
    return _Group(done, [], None if big else commit_seconds)


def _begin(conn: sqlite3.Connection, overtaken: Callable[[], bool]) -> bool:
    """BEGIN IMMEDIATE on the writer's thread; False, nothing begun, once `overtaken` (an urgent transaction queued
    behind this one, which then goes first). Another process's write lock is waited for here, a try every BUSY_STEP,
    not in SQLite's busy handler, which sleeps ever longer between its tries — 25 ms once it has waited 33 ms, then
    50 and 100 — and holds this thread all along: with `notifier serve` beside a `notifier worker`, a red warning's
    claim queued behind a routine claim that had waited 80–85 ms in it, and was let go only at that claim's next try.
    WriterBusy after BUSY_TIMEOUT_MS, as SQLite would say it."""
    _set_busy_timeout(conn, 0)
    try:
        deadline = time.monotonic() + BUSY_TIMEOUT_MS / 1000
        while True:
            try:
                conn.execute("BEGIN IMMEDIATE")
                return True
            except sqlite3.OperationalError as exc:
                if exc.sqlite_errorcode != sqlite3.SQLITE_BUSY:
                    raise
                if time.monotonic() >= deadline:
                    raise WriterBusy(*exc.args) from exc
            if overtaken():
                return False
            time.sleep(BUSY_STEP)
    finally:
        _set_busy_timeout(conn, BUSY_TIMEOUT_MS)  # for the transaction's own statements and everything else


def _set_busy_timeout(conn: sqlite3.Connection, ms: int) -> None:
    """PRAGMA busy_timeout, set whatever interrupt meant for a yielding transaction stops the statement first
    (`_stray_interrupt`: it does not outlive a statement it stopped)."""
    for last in (False, False, True):
        try:
            conn.execute(f"PRAGMA busy_timeout = {ms}")
            return
        except sqlite3.OperationalError as exc:
            if last or not _interrupted(exc):
                raise


def _stray_interrupt(outcome: _Outcome) -> bool:
    """A transaction that does not give way stopped by an interrupt: one meant for a yielding transaction before it,
    kept in force by a statement left unfinished on the connection (`_set`; seen in CI, a red warning's BEGIN and
    ROLLBACK "interrupted"). An interrupt is never such a transaction's failure: it runs again, as does any whose
    BEGIN it stopped."""
    return outcome.item.give_way is None and _interrupted(outcome.exc)


def _interrupted(exc: BaseException | None) -> bool:
    return isinstance(exc, sqlite3.OperationalError) and exc.sqlite_errorcode == sqlite3.SQLITE_INTERRUPT


def _run_one(conn: sqlite3.Connection, item: _Queued) -> _Outcome:
    """One queued transaction's work inside the writer's transaction: its result, or its error — GaveWay when it was
    asked to give way (`item.give_way`) before it ended (the caller rolls back)."""
    give_way = item.give_way
    try:
        if give_way is not None:
            give_way.arm()
        result = _driven(item.work, _ThreadDb(conn, give_way))
        if give_way is not None and give_way.disarm():
            raise GaveWay
    except BaseException as exc:
        asked = give_way is not None and give_way.disarm()  # before the rollback: no interrupt may land on it
        # An interrupted statement raises sqlite3's OperationalError: that is the giving way, not a failure.
        if asked and not isinstance(exc, GaveWay):
            gave_way = GaveWay()
            gave_way.__cause__ = exc
            exc = gave_way
        return _Outcome(item, None, exc)
    return _Outcome(item, result, None)


@asynccontextmanager
async def _begun(writer: aiosqlite.Connection) -> AsyncIterator[None]:
    await writer.execute("BEGIN IMMEDIATE")
    try:
        yield
    except BaseException:
        await writer.execute("ROLLBACK")
        raise
    await writer.execute("COMMIT")


# A queued transaction's rank: the writer's thread takes the lowest first (then the oldest).
_URGENT, _NORMAL, _BACKGROUND, _IDLE = 0, 1, 2, 3


class _Queued(NamedTuple):
    rank: int
    order: int  # unique: ties of rank never compare the rest
    work: Callable[[Db], Awaitable[Any]]
    give_way: GiveWay | None
    done: asyncio.Future[Any]
    small: bool  # may join a group commit: not urgent, and no publish or import (`run`)


# Small transactions queued one behind another commit together (`_run_group`): one BEGIN, one COMMIT and one fsync
# of the log for several; one that fails rolls back the group, whose others run again. During a fan-out they are
# the dispatcher's claims, records and rate-bucket payments, and their BEGINs and COMMITs took ~30 % of the single
# writer's time (1,650 commits of a 300,000-SMS delivery, 2.5 s of ~8.5 s); grouped, about two a commit, and on a
# disk whose fsync takes 2 ms (network block storage) 13-19 % more numbers a second (bench/RESULTS.md, seventeenth
# round). But each one joining holds back the answers of those before it for as long as it runs (a record: ~9 ms),
# which on a disk that flushes fast cost more than the commit saved (a claim's rows waited for the record behind
# it): so a group takes new ones only for as long as a commit takes (the writer's own moving average), and at most
# GROUP_LIMIT. An urgent transaction (a red warning's) ends a group and runs alone, and so do publishes and imports
# (big, and they give way), so that a small write never waits for one of them to commit.
GROUP_LIMIT = 8
COMMIT_WEIGHT = 0.05  # of the last commit in the writer's estimate of how long one takes (a moving average)
FIRST_COMMIT_GUESS = 0.001  # seconds, until the writer has measured its own


def _settle(done: asyncio.Future[Any], result: Any, exc: BaseException | None) -> None:
    """On the event loop: a queued transaction's outcome to its caller (unless it stopped waiting)."""
    if done.done():
        return
    if exc is not None and not isinstance(exc, Exception):  # the loop is being stopped: so is the caller
        done.cancel()
    elif exc is not None:
        done.set_exception(_handed_over(exc))
    else:
        done.set_result(result)


def _handed_over(exc: BaseException) -> BaseException:
    """`exc` as its caller gets it: without the writer's frames it (or an exception it was raised from) passed
    through, each of which keeps its locals and its caller's frame — the queued transaction, whose future holds
    `exc`: a cycle, and with it every row the work held (a routine record's thousand updates, a push's receipts),
    garbage only the cyclic collector frees. Under a fan-out a red warning makes routine records give way
    (GaveWay) again and again: young passes of 5–19 ms freeing up to 13,000 such objects stopped the event loop
    (measured, 300,000 SMS with reports). The stack stays readable in a log, as a note (none for GaveWay: a turn
    given, not a failure)."""
    seen: set[int] = set()
    chain: list[BaseException | None] = [exc]
    while chain:
        chained = chain.pop()
        if chained is None or id(chained) in seen:
            continue
        seen.add(id(chained))
        if chained.__traceback__ is not None:
            if not isinstance(exc, GaveWay):
                chained.add_note("on the writer's thread:\n" + "".join(traceback.format_tb(chained.__traceback__)))
            chained.__traceback__ = None
        chain += [chained.__cause__, chained.__context__]  # both: `raise … from` keeps the one it handled too
    return exc


def _roll_back(conn: sqlite3.Connection) -> None:
    if conn.in_transaction:  # an interrupted write has rolled the transaction back already
        conn.execute("ROLLBACK")


async def _set(conn: aiosqlite.Connection, pragma: str) -> None:
    """A PRAGMA setting, its answer row read to the end. A statement left unfinished (an unread cursor lives on in
    aiosqlite's thread for a while) keeps an interrupt in force on its connection, since SQLite forgets one only when
    a statement starts with none other unfinished: after a routine transaction was stopped for a red warning, the
    red warning's own statements failed "interrupted" (seen in CI; `_stray_interrupt`)."""
    await conn.execute_fetchall(f"PRAGMA {pragma}")


def split_statements(script: str) -> list[str]:
    """Statements of a migration file, so that they run inside one explicit transaction."""
    statements, buffer = [], ""
    for line in script.splitlines(keepends=True):
        buffer += line
        if sqlite3.complete_statement(buffer):
            if buffer.strip():
                statements.append(buffer.strip())
            buffer = ""
    if buffer.strip() and not all(ln.strip().startswith("--") for ln in buffer.strip().splitlines()):
        raise ValueError("migration ends with an incomplete statement")
    return statements


class _Joining:
    """Those that join `first`'s group commit, one a call (GROUP_LIMIT): none if it is not small, and none once the
    group has run for `patience` — as long as a commit takes (each one joining saves a commit, and holds back the
    answers of those before it for as long as it runs). `taken`: those it handed over."""

    def __init__(self, first: _Queued, next_small: Callable[..., _Queued | None], patience: float) -> None:
        self._next, self._patience = next_small, patience
        self._room = GROUP_LIMIT - 1 if first.small else 0
        self._started = 0.0
        self.taken: list[_Queued] = []

    def __call__(self) -> _Queued | None:
        self._started = self._started or time.perf_counter()  # from the end of the first: its time is no one's wait
        if len(self.taken) >= self._room or time.perf_counter() - self._started >= self._patience:
            return None
        if (item := self._next(small=True)) is not None:
            self.taken.append(item)
        return item


class SqliteBackend:
    """Connections and transactions of one SQLite database file."""

    dialect = SQLITE

    def __init__(self, path: Path, *, group_for: float | None = None) -> None:
        """`group_for`: how long a group commit takes in more transactions (GROUP_LIMIT); by default as long as a
        commit takes, measured as the writer goes."""
        self.path = path
        self._group_for = group_for
        self._commit_seconds = FIRST_COMMIT_GUESS
        self._writer: aiosqlite.Connection | None = None
        self._reader: aiosqlite.Connection | None = None
        self._bulk_reader: aiosqlite.Connection | None = None
        self._checkpointer: aiosqlite.Connection | None = None
        self._checkpointing: asyncio.Task[None] | None = None
        self._checkpoint_now = asyncio.Event()
        self._log_hand_over: LogHandOver | None = None
        self._lock = asyncio.Lock()
        self._waiting = Waiters()  # writers other than background ones waiting for the lock
        self._give_way: GiveWay | None = None
        # The writer's queue (`run`): transactions waiting for the writer's thread, most urgent first.
        self._queue: list[_Queued] = []
        self._queue_guard = threading.Lock()  # the event loop's thread puts, the writer's thread takes
        self._queue_order = itertools.count()
        self._draining = False
        self._drainer: asyncio.Task[None] | None = None  # held: a task nobody references may be collected mid-run
        self._signs = QueuedSigns(path)  # other processes on this file told of queued deliveries

    async def open(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._writer = await self._connect()
        await _set(self._writer, f"wal_autocheckpoint={WRITER_CHECKPOINT_PAGES}")  # see CHECKPOINT_EVERY
        self._reader = await self._connect()
        self._bulk_reader = await self._connect()
        self._checkpointer = await self._connect()
        loop = asyncio.get_running_loop()

        def wake_checkpointer() -> None:  # from the writer's thread
            loop.call_soon_threadsafe(self._checkpoint_now.set)

        self._log_hand_over = LogHandOver(wake_checkpointer)
        self._checkpointing = asyncio.create_task(self._checkpoint(self._checkpointer, self._log_hand_over))
        # sqlite3 lets another thread interrupt; the sign reaches the other processes on this file
        self._give_way = GiveWay(self._writer._conn.interrupt, UrgentSign(self.path), self._urgent_queued)

    async def _connect(self) -> aiosqlite.Connection:
        conn = await aiosqlite.connect(self.path, isolation_level=None)
        conn.row_factory = sqlite3.Row
        for pragma in _PRAGMAS:
            await _set(conn, pragma)
        return conn

    async def close(self) -> None:
        if self._checkpointing is not None:
            self._checkpointing.cancel()
            try:
                await self._checkpointing
            except asyncio.CancelledError:
                current = asyncio.current_task()
                if current is not None and current.cancelling():  # our caller's cancellation: not swallowed
                    raise
        for conn in (self._checkpointer, self._bulk_reader, self._reader, self._writer):
            if conn is not None:
                await conn.close()
        self._checkpointer = self._bulk_reader = self._reader = self._writer = None
        self._checkpointing = None

    async def _checkpoint(self, conn: aiosqlite.Connection, hand_over: LogHandOver) -> None:
        """Copy what the WAL holds into the database every CHECKPOINT_EVERY, beside the writer, and at once after
        a big transaction's commit (`LogHandOver`)."""
        while True:
            await woken(self._checkpoint_now, CHECKPOINT_EVERY)
            self._checkpoint_now.clear()
            try:
                # Again until a pass finds nothing new (the writer may commit during one): the log starts over,
                # instead of growing, only if everything in it has been copied when a transaction begins.
                last: tuple[Any, ...] | None = None
                for _ in range(CATCH_UP_PASSES):
                    seen = hand_over.pass_begins()
                    rows = list(await conn.execute_fetchall("PRAGMA wal_checkpoint(PASSIVE)"))
                    if not rows or rows[0][0]:  # busy
                        break
                    if rows[0][1] == rows[0][2]:  # every page of the log
                        hand_over.copied_all(seen)
                    if tuple(rows[0]) == last:  # caught up
                        break
                    last = tuple(rows[0])
            except sqlite3.Error:  # the file's trouble shows in the writer's own transactions; try again
                log.warning("checkpoint of the write-ahead log failed; trying again", exc_info=True)

    @asynccontextmanager
    async def transaction(self, *, background: bool = False) -> AsyncIterator[Db]:
        """One write transaction (BEGIN IMMEDIATE … COMMIT), rolled back on any error."""
        async with self._writer_turn(background) as writer, _begun(writer):
            yield SqliteDb(writer)

    @asynccontextmanager
    async def schema_change(self) -> AsyncIterator[Db]:
        async with self._writer_turn(background=False) as writer:
            await _set(writer, "foreign_keys = OFF")  # outside a transaction: inside one it is ignored
            try:
                async with _begun(writer):
                    changes = writer.total_changes
                    yield SqliteDb(writer)
                    # Checked only when something was applied (every migration adds its version's row): the check
                    # reads every reference in the database, 2.5 s at 300,000 people — not at every start.
                    if writer.total_changes != changes and (
                            broken := list(await writer.execute_fetchall("PRAGMA foreign_key_check"))):
                        table, rowid, parent, _ = broken[0]
                        raise sqlite3.IntegrityError(
                            f"after the upgrade {len(broken)} rows would refer to nothing (first: {table} row "
                            f"{rowid}, to {parent}); nothing was changed")
            finally:
                await _set(writer, "foreign_keys = ON")

    async def run(self, work: Callable[[Db], Awaitable[T]], *, background: bool = False, urgent: bool = False,
                  yielding: bool = False, single: bool = False, idle: bool = False) -> T:
        """`work` as one write transaction, run whole on the writer connection's thread (module docstring), in the
        writer's queue: `urgent` ones first, then the others in order, `background` ones (the dispatcher's routine
        claims and records, which come back-to-back during a fan-out) only when nothing else waits, and `idle` ones
        (delivery reports applied) after those: during a fan-out the writer's time is the sends'. An `urgent` one
        also makes a `yielding` one in progress give way (`give_way.py`), which then runs again: a routine publish
        once it is quiet, a background one at its next turn (after another process's urgent one it gave way to)."""
        if self._give_way is None:
            raise RuntimeError("store is not open")
        rank = _URGENT if urgent else _IDLE if idle else _BACKGROUND if background else _NORMAL
        # See GROUP_LIMIT; an idle one never joins a claim's group: the claim's answer would wait for it.
        small = not urgent and not idle and (background or not yielding)
        gave_way, patience = 0, time.monotonic() + URGENT_PATIENCE
        while True:
            if gave_way:
                await (self._give_way.others_done() if background else self._give_way.quiet())
            give_way = self._give_way if yielding and gave_way < MAX_GIVE_WAYS else None
            # Urgent: ask until it runs (other processes wait in SQLite's own lock: told until it ends, since its
            # BEGIN may wait there). Yielding: watched for urgent ones of other processes while it waits and runs —
            # but a background one (a claim or a record, milliseconds) looks only when it begins and before each
            # statement, on the writer's thread (`GiveWay.arm`, `check`): a
            # watcher each, looking every NUDGE_SECONDS, took ~9 % of the event loop's time in a fan-out (py-spy):
            # each look is a system call, after which the event loop waits for the GIL back from the store's threads.
            helpers = ([self._give_way.keep_asking(), self._give_way.announce()] if urgent else []) + (
                [give_way.watch()] if give_way is not None and not background else [])
            tasks = [asyncio.create_task(helper) for helper in helpers]
            try:
                result: T = await self._queued(rank, work, give_way, small)
                return result
            except GaveWay:
                gave_way += 1
                if background:
                    log.debug(BATCH_GAVE_WAY, gave_way, MAX_GIVE_WAYS)
                else:
                    log.info(GAVE_WAY, gave_way, MAX_GIVE_WAYS)
            except WriterBusy:
                if not urgent or time.monotonic() >= patience:
                    raise
                log.warning(STILL_BUSY)
            finally:
                for task in tasks:
                    task.cancel()

    def _queued(self, rank: int, work: Callable[[Db], Awaitable[T]], give_way: GiveWay | None,
                small: bool) -> asyncio.Future[T]:
        """`work` put in the writer's queue; its result (or exception) once the writer's thread has run it."""
        loop = asyncio.get_running_loop()
        done: asyncio.Future[T] = loop.create_future()
        with self._queue_guard:
            heapq.heappush(self._queue, _Queued(rank, next(self._queue_order), work, give_way, done, small))
            start, self._draining = not self._draining, True
        if start:
            self._drainer = asyncio.create_task(self._drain(loop))
        return done

    def _urgent_queued(self) -> bool:
        """An urgent transaction of this process waits in the queue (`GiveWay`: a yielding one gives way to it)."""
        with self._queue_guard:
            return bool(self._queue) and self._queue[0].rank == _URGENT

    async def _drain(self, loop: asyncio.AbstractEventLoop) -> None:
        """While the queue holds work: take the writer's lock (in turn with the event loop's transactions, so that
        an urgent one queued meanwhile waits only for those ahead of it) and hand the queue to the writer's thread,
        which runs it to its end or until someone waits for the lock."""
        try:
            while True:
                with self._queue_guard:
                    if not self._queue:
                        self._draining = False
                        return
                await self._turn()
                try:
                    if self._writer is None:
                        raise RuntimeError("store is not open")
                    # aiosqlite runs a function on its connection's thread with `_execute` (as its own methods do).
                    await self._writer._execute(self._run_queued, loop)  # type: ignore[no-untyped-call]
                finally:
                    self._lock.release()
        except BaseException as exc:  # the connection failed or closed: nothing queued may wait for ever
            with self._queue_guard:
                queued, self._queue, self._draining = self._queue, [], False
            for item in queued:
                _settle(item.done, None, exc)
            if not isinstance(exc, Exception):  # the task itself was cancelled; an error went to the callers
                raise

    def _run_queued(self, loop: asyncio.AbstractEventLoop) -> None:
        """On the writer's thread: the queued transactions, most urgent first, one after another (small ones queued
        together in a group commit, GROUP_LIMIT) — until the queue is empty, or someone waits for
        the lock (a multi-statement `transaction`) and nothing urgent is queued."""
        if self._writer is None:
            raise RuntimeError("store is not open")
        conn = self._writer._conn
        while (first := self._next()) is not None:
            joining = self._joining(first)
            try:
                outcomes, undone, commit_seconds = _run_group(
                    conn, first, joining, self._log_hand_over,
                    lambda: first.rank != _URGENT and self._urgent_queued())
            except BaseException as exc:  # its ROLLBACK failed: every one it took hears why, none waits for ever
                outcomes = [_Outcome(item, None, exc) for item in (first, *joining.taken)]
                undone, commit_seconds = [], None
            if commit_seconds is not None:
                self._commit_seconds += (commit_seconds - self._commit_seconds) * COMMIT_WEIGHT
            with self._queue_guard:
                for item in undone:  # in their places: most urgent first, then the oldest
                    heapq.heappush(self._queue, item)
            for outcome in outcomes:
                loop.call_soon_threadsafe(_settle, outcome.item.done, outcome.result, outcome.exc)
            for outcome in outcomes:
                if outcome.exc is not None and not isinstance(outcome.exc, Exception):
                    raise outcome.exc

    def _joining(self, first: _Queued) -> _Joining:
        """Those that join `first`'s group commit (`_Joining`), by this writer's patience."""
        return _Joining(first, self._next, self._commit_seconds if self._group_for is None else self._group_for)

    def _next(self, *, small: bool = False) -> _Queued | None:
        """The next queued transaction whose caller still waits, most urgent first — none when the queue is empty or
        someone waits for the lock (a multi-statement `transaction`) and nothing urgent is queued; `small`: none
        unless it may join a group commit (GROUP_LIMIT), so that anything else queued goes next, alone."""
        while True:
            with self._queue_guard:
                if not self._queue or (self._waiting.count and self._queue[0].rank != _URGENT):
                    return None
                if small and not self._queue[0].small:
                    return None
                item = heapq.heappop(self._queue)
            if not item.done.done():  # else its caller was cancelled while it waited
                return item

    @asynccontextmanager
    async def _writer_turn(self, background: bool) -> AsyncIterator[aiosqlite.Connection]:
        """The writer connection, held for one transaction driven from the event loop (`transaction`); a
        `background` turn is taken only when no other transaction waits."""
        if self._writer is None:
            raise RuntimeError("store is not open")
        await (self._background_turn() if background else self._turn())
        try:
            yield self._writer
        finally:
            self._lock.release()

    async def _turn(self) -> None:
        with self._waiting.waiting():
            await self._lock.acquire()

    async def _background_turn(self) -> None:
        while True:
            await self._waiting.none.wait()
            await self._lock.acquire()
            if not self._waiting.count:
                return
            self._lock.release()  # someone came while we queued: the lock passes to the first of them

    @property
    def reader(self) -> Db:
        if self._reader is None:
            raise RuntimeError("store is not open")
        return SqliteDb(self._reader)

    async def bulk_read(self, work: Callable[[Db], Awaitable[T]]) -> T:
        """`work` run whole on the bulk reader's thread: the rows are unpacked there, not on the event loop."""
        if self._bulk_reader is None:
            raise RuntimeError("store is not open")
        result: T = await self._bulk_reader._execute(  # type: ignore[no-untyped-call]
            _read_whole, self._bulk_reader._conn, work)
        return result

    async def run_script(self, db: Db, script: str) -> None:
        for statement in split_statements(script):
            await db.execute(statement)

    @asynccontextmanager
    async def queue_watch(self, wake: Callable[[int, str | None], None],
                          coming: Callable[[int], None] | None = None) -> AsyncIterator[QueueWatch]:
        """This process's FIFO beside the database (`queued_signs.py`): told of the delivery rows other processes
        commit (`queued`: every insert of them, each fan-out's and each record's cancel notices) and of the
        life-safety publishes they begin (`announce`); `listening` once the FIFO is made. As on PostgreSQL, what
        no insert tells of — a retry or a deferral coming due, a fallback — the life-safety loop waits for."""
        def heard(payload: str) -> None:
            hear(payload, wake, coming)

        async with self._signs.listening(heard) as made:
            yield QueueWatch(listening=made)

    async def announce(self, priority: int) -> None:
        self._signs.tell(f"{COMING}{priority}")

    def queued(self, priority: int, alert_id: str) -> None:
        self._signs.tell(f"{priority}:{alert_id}")

    async def queued_again(self, priority: int, alert_id: str) -> None:
        self.queued(priority, alert_id)  # every sign here is the store's own: an update's is an insert's

    async def after_bulk_load(self, tables: Sequence[str]) -> None:
        """Nothing: SQLite plans without statistics unless ANALYZE was ever run, and the fan-out's statements are
        written for those plans (the one it would not choose is named, `Dialect.indexed_by`)."""

    async def after_erasure(self) -> None:
        """Copy the WAL into the database and truncate it to zero bytes, so that neither `notifier.db` nor
        `notifier.db-wal` keeps a copy of a deleted contact (secure_delete zeroed the pages themselves).
        Retried briefly while a reader holds an old snapshot (the checkpoint cannot pass it)."""
        if self._writer is None:
            return
        async with self._writer_turn(background=False) as writer:  # a waiter the queue's thread gives way to
            for _ in range(_CHECKPOINT_TRIES):
                rows = list(await writer.execute_fetchall("PRAGMA wal_checkpoint(TRUNCATE)"))
                if rows and rows[0][0] == 0:
                    return
                await asyncio.sleep(0.05)
