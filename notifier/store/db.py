"""The small layer every query module is written against, once for both back-ends.

Queries are plain SQL with `?` placeholders. What truly differs between SQLite and PostgreSQL is a `Dialect`
fragment (new ids, two-argument maximum, row locks, list and record parameters) or a `Db` method (placeholders
and row counts), never a second copy of a statement:

    Db (Protocol)                 a connection inside a transaction, or the reader: execute → rows touched,
    ├── SqliteDb (sqlite_db.py)   fetch → rows, fetchrow, fetchval, executemany
    └── PgDb (pg_db.py)           (`?` becomes `$n`, statuses parsed for row counts)

List and record parameters travel as ONE JSON text parameter on both back-ends (`Dialect.each`, `.records`), so
a statement's text does not depend on how many values it carries (one prepared statement, no parameter limits).
"""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Sequence
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass
from typing import Any, Protocol, TypeVar

from pydantic_core import from_json, to_json

T = TypeVar("T")
# A person's channels for one topic, ranked: at most one of each kind (subscriptions.models.CHANNEL_KINDS, five).
MAX_RANK = 63


class Row(Protocol):
    """A result row: sqlite3.Row and asyncpg.Record both read by column name or position."""

    def __getitem__(self, key: str | int, /) -> Any: ...
    def keys(self) -> Iterable[str]: ...


@dataclass(frozen=True, slots=True)
class Dialect:
    """The SQL fragments that differ between the two back-ends (each names what it is for)."""

    name: str
    one_writer: bool  # writers queue for one writer (SQLite): a transaction's urgency (`Backend.run`) orders them
    update_in_with: bool  # a WITH may hold an UPDATE … RETURNING whose rows the statement reads (SQLite: no)
    _numbered_id: str  # a 32-hex-digit id from a 16-hex-digit prefix and a row number: format(prefix=…, n=…)
    greatest: str  # a format string for the larger of two non-NULL values: greatest.format(a, b)
    least: str  # … and for the smaller
    for_update: str  # appended to a SELECT whose rows the transaction will change (SQLite: the write lock suffices)
    skip_locked: str  # appended to a claim's SELECT: rows another claimer holds are skipped, not waited for
    row_key: str  # a row's cheapest key, for an UPDATE of the rows a subquery picks (SQLite: rowid, not a second index)
    advisory_lock: str | None  # locks a text key until the transaction ends (SQLite: BEGIN IMMEDIATE suffices)
    _each: str  # a subquery of the values of one JSON-array parameter, column `value`
    _element: str  # the n-th element of a JSON array `e` as a typed value: format(e=…, n=…, type=…)
    _records: str  # the rows of a JSON array-of-arrays parameter; alias `e` for each element
    _packed: str  # an aggregate of every row's values as one JSON array of arrays: format(values=…)
    _indexed_by: str  # after a table in FROM: the index to read it by, format(index=…) (PostgreSQL: none)
    _row_number_of: str | None  # a table row's number, unique in the table: format(t=…) (PostgreSQL: none)
    _ranked_number: str  # from it (`target_key`) and the row's rank: unique in a fan-out's statement
    # Planner settings for statements over much of a table (`planned_for`); SQLite's planner has none to set
    population_plan: tuple[tuple[str, str], ...]
    # … and for statements that join a batch parameter to big tables by key (`planned_each_run`)
    each_run_plan: tuple[tuple[str, str], ...]
    # People whose delivery rows one transaction adds when a large publish has answered first (`fan_out_later`),
    # unless `[database] fan_out_slice` says otherwise
    fan_out_slice: int

    def max_of(self, a: str, b: str) -> str:
        return self.greatest.format(a, b)

    def min_of(self, a: str, b: str) -> str:
        return self.least.format(a, b)

    def numbered_id(self, n: str) -> str:
        """A new 32-hex-digit id for each row one INSERT … SELECT writes (fan-out writes many at once): the
        statement's random prefix (one parameter: pass `id_prefix()`) and the row's number `n`, e.g.
        `ROW_NUMBER() OVER ()`. The ids of one fan-out are neighbours in the primary-key index, so each row is added
        where the last one went instead of on a random page: measured on SQLite, 300,000 delivery rows 7.0 -> 5.2 s."""
        return self._numbered_id.format(prefix="CAST(? AS TEXT)", n=n)

    def fan_out_numbers(self, t: str, *, table: bool) -> tuple[str, str]:
        """(a column of a fan-out's inner SELECT over `t`, named `target_key` there; each row's number in the outer
        SELECT, from `target_key` and `rank`) for `numbered_id`: unique within the statement, as a person has one
        target row and at most MAX_RANK channels. SQLite numbers by the target row's rowid and the rank: its
        `ROW_NUMBER() OVER ()` over the ranked rows was a pass of its own (300,000 rows, the SELECT alone: 0.89 ->
        0.56 s). PostgreSQL, and a `t` that is no table (`table` false), number by ROW_NUMBER()."""
        if not table or self._row_number_of is None:
            return "NULL", "ROW_NUMBER() OVER ()"
        return self._row_number_of.format(t=t), self._ranked_number

    def indexed_by(self, index: str) -> str:
        """After a table in a FROM clause: read it by `index` where SQLite's planner, left to itself, measurably
        picks worse (a unique index that needs each row's table page, over a covering one). PostgreSQL plans by
        its statistics: nothing. SQLite refuses the statement if the index is missing, so a hint cannot go stale
        silently."""
        return self._indexed_by.format(index=index)

    def each(self, sql_type: str = "TEXT") -> str:
        """`(SELECT value …)` over one list parameter (pass `as_list(values)`): `col IN {each()}`."""
        return self._each.format(type=sql_type)

    def records(self, columns: Sequence[tuple[str, str]]) -> str:
        """A FROM item over one parameter holding rows (pass `as_rows(rows)`), with the named, typed columns."""
        picks = ", ".join(f"{self._element.format(n=n, type=t)} AS {name}" for n, (name, t) in enumerate(columns))
        return self._records.format(picks=picks)

    def packed(self, values: Sequence[str]) -> str:
        """A select-list aggregate of every row's `values` as one JSON array of arrays (read it with `unpacked`).
        For the hot paths that read hundreds of rows: a query's rows are fetched one step at a time, and on
        SQLite each step hands the GIL back to the thread of the query, which under a fan-out waits for the busy
        event-loop thread every time — measured, 500 rows on a thread beside a busy one: 159 ms; packed: 8 ms."""
        return self._packed.format(values=", ".join(values))


SQLITE = Dialect(
    name="sqlite",
    one_writer=True,
    update_in_with=False,
    _numbered_id="({prefix} || printf('%016x', {n}))",
    greatest="MAX({0}, {1})",
    least="MIN({0}, {1})",
    for_update="",
    skip_locked="",
    row_key="rowid",
    advisory_lock=None,
    _each="(SELECT value FROM json_each(?))",
    _element="e.value ->> {n}",
    _records="(SELECT {picks} FROM json_each(?) AS e)",
    _packed="json_group_array(json_array({values}))",
    _indexed_by=" INDEXED BY {index}",
    _row_number_of="{t}.rowid",
    _ranked_number=f"target_key * {MAX_RANK + 1} + rank",
    population_plan=(),
    each_run_plan=(),
    # The single writer is held ~11 ms a slice (thirty-fifth round): a red warning waits for it no longer.
    fan_out_slice=2_000,
)

POSTGRES = Dialect(
    name="postgresql",
    one_writer=False,
    update_in_with=True,
    _numbered_id="({prefix} || lpad(to_hex({n}), 16, '0'))",
    greatest="GREATEST({0}, {1})",
    least="LEAST({0}, {1})",
    for_update=" FOR UPDATE",
    skip_locked=" FOR UPDATE SKIP LOCKED",
    row_key="id",
    advisory_lock="SELECT pg_advisory_xact_lock(hashtext(?))",
    _each="(SELECT CAST(v AS {type}) FROM json_array_elements_text(CAST(? AS json)) AS v)",
    _element="CAST(e ->> {n} AS {type})",
    _records="(SELECT {picks} FROM json_array_elements(CAST(? AS json)) AS e)",
    _packed="CAST(json_agg(json_build_array({values})) AS text)",
    _indexed_by="",
    _row_number_of=None,
    _ranked_number="ROW_NUMBER() OVER ()",
    # Merge joins in the people's order (from indexes: no sort before the ranking, migration 0021), not an index
    # lookup a row nor hash joins sorted after; a sort in memory (4 MB spilled 100,000 rows to disk); and a plan of
    # the statement's own, never cached: a generic plan made under these settings would serve every small fan-out
    # after it (a seq scan of every contact for a red warning to one street).
    population_plan=(("enable_nestloop", "off"), ("enable_hashjoin", "off"), ("work_mem", "64MB"),
                     ("plan_cache_mode", "force_custom_plan")),
    each_run_plan=(("plan_cache_mode", "force_custom_plan"),),
    # Nobody waits for a slice (MVCC), so a whole city's at once: slices of 20,000 cost 8 µs a row (five of them
    # 0.95 s for 100,000 people) against 6.5 µs in one (0.65 s), measured in the thirty-fifth round.
    fan_out_slice=100_000,
)


def id_prefix() -> str:
    """The random half of the ids one statement numbers (`Dialect.numbered_id`): 64 bits, fresh per statement, so
    ids stay unique across statements and as unguessable as the alert's neighbours allow (they are no secret:
    receivers see their own as `webhook-id`, an idempotency key)."""
    return secrets.token_hex(8)


# A batch's rows go to the database as one JSON text and come back as one: encoded and parsed by pydantic's Rust
# JSON (pydantic_core), on the store's threads but holding the GIL the event loop needs — 600 rows of three values:
# 0.11 µs a row against json.dumps's 0.66-0.72; 600 claimed rows of twelve: 0.30-0.34 against json.loads's 0.54.


def as_list(values: Iterable[Any]) -> str:
    """The one parameter of a `Dialect.each()` subquery."""
    return to_json(list(values)).decode()


def as_rows(rows: Iterable[Sequence[Any]]) -> str:
    """The one parameter of a `Dialect.records()` FROM item."""
    return to_json(list(rows)).decode()


def unpacked(value: str | None) -> list[list[Any]]:
    """The rows a `Dialect.packed` aggregate gathered (PostgreSQL's json_agg of no rows is NULL)."""
    rows: list[list[Any]] = from_json(value) if value else []
    return rows


class Db(Protocol):
    """One connection (or the read pool) as every query module sees it."""

    dialect: Dialect

    async def execute(self, sql: str, *args: Any) -> int:
        """Run one statement; the number of rows it inserted, changed or deleted."""
        ...

    async def executemany(self, sql: str, rows: Iterable[Sequence[Any]]) -> None: ...
    async def fetch(self, sql: str, *args: Any) -> list[Row]: ...
    async def fetchrow(self, sql: str, *args: Any) -> Row | None: ...
    async def fetchval(self, sql: str, *args: Any) -> Any: ...


async def lock_key(db: Db, key: str) -> None:
    """Serialise check-then-insert on `key` across workers until the transaction ends (there is no row to lock
    yet); a no-op where the transaction already excludes every other writer."""
    if db.dialect.advisory_lock is not None:
        await db.execute(db.dialect.advisory_lock, key)


# `planned_for`: statements over at least this share of a table's rows (and this many) get the population plan.
POPULATION_SHARE = 0.25
POPULATION_ROWS = 10_000


@asynccontextmanager
async def planned_for(db: Db, rows: int, table: str) -> AsyncIterator[None]:
    """Inside the transaction, around statements that join about `rows` rows to `table` row by row: when that is
    much of the table (its planner statistics' count), `Dialect.population_plan` applies until the block ends.
    PostgreSQL estimates a just-frozen target set from statistics taken before it existed (738 rows for a whole
    city's 100,000), so it joined each target to its contact by an index lookup and sorted on disk. Measured, store
    alone, a 100,000-person publish on copies of one database (six alternated pairs): its delivery rows 1.18-1.66 ->
    1.07-1.21 s with hash joins and the sort in memory; for a quarter of the contacts or fewer the plans were even."""
    if not db.dialect.population_plan or rows < POPULATION_ROWS or rows < POPULATION_SHARE * float(await db.fetchval(
            "SELECT COALESCE(MAX(reltuples), 0) FROM pg_class WHERE oid = to_regclass(?)", table)):
        yield
        return
    async with _planned(db, db.dialect.population_plan):
        yield


@asynccontextmanager
async def planned_each_run(db: Db) -> AsyncIterator[None]:
    """Inside the transaction, around statements that join a batch parameter (a JSON list, which no planner sees
    into) to big tables by key: each run planned for the tables as they are then. PostgreSQL keeps a generic plan
    after five runs on a connection, made for the tables as they were: on a small table a hash join that reads it
    whole, read whole at every run after the table has grown, until autovacuum next analyses it (a city's fan-out
    grows it a million rows in a minute). The price: each run's planning, and on small tables plans that read
    them whole (a JSON list is estimated at 100 rows) — a push of one report ~4 ms on a store of 2,000 deliveries,
    against 1.6 ms as single-row statements; hundreds at a time, 34–41 ms for 500 against ~525."""
    async with _planned(db, db.dialect.each_run_plan):
        yield


@asynccontextmanager
async def _planned(db: Db, plan: tuple[tuple[str, str], ...]) -> AsyncIterator[None]:
    """Planner settings `plan` for the block, the transaction's own before and after it."""
    if not plan:
        yield
        return
    names = [name for name, _ in plan]
    settings = ", ".join(["set_config(?, ?, true)"] * len(plan))  # `true`: for this transaction only
    # Read and set in one round trip: the settings as they were come from a row the set needs made first.
    olds = ", ".join(f"current_setting(?) AS s{n}" for n in range(len(plan)))
    before = await db.fetchrow(
        f"WITH b AS MATERIALIZED (SELECT {olds}) SELECT b.*, {settings} FROM b",
        *names, *(v for pair in plan for v in pair))
    yield
    # The transaction's later statements plan as ever. A block that raised leaves them: its error ends the
    # transaction (or the savepoint), and the settings with it.
    assert before is not None  # noqa: S101 - a SELECT without FROM returns its row
    await db.fetchrow(f"SELECT {settings}", *(v for n, name in enumerate(names) for v in (name, before[n])))


# A parameter PostgreSQL cannot type from its context (arithmetic, a SELECT list): say what it is.
FLOAT = "CAST(? AS DOUBLE PRECISION)"
INT = "CAST(? AS INTEGER)"
TEXT = "CAST(? AS TEXT)"


def marks(n: int) -> str:
    """`?, ?, …` for a VALUES row of n columns."""
    return ", ".join("?" * n)


@dataclass(slots=True)
class QueueWatch:
    """What `Backend.queue_watch` yields: whether it listens now, so that every delivery row another process
    commits wakes the watcher soon (not while PostgreSQL's lost connection is being made again, nor on SQLite
    without its FIFO: `queued_signs.py`)."""

    listening: bool = False


COMING = "coming:"  # an announcement's payload, before its priority (`announce`; a commit's: `<priority>:<alert>`)


def hear(payload: str, wake: Callable[[int, str | None], None], coming: Callable[[int], None] | None) -> None:
    """A queued sign (`Backend.queue_watch`) to its watcher: `<priority>:<alert id>` of delivery rows committed (the
    priority alone before PostgreSQL's migration 0024) to `wake`, `coming:<priority>` (`announce`) to `coming`.
    ValueError when the payload is neither."""
    announced = payload.removeprefix(COMING)
    if announced == payload:
        priority, _, alert_id = payload.partition(":")
        wake(int(priority), alert_id or None)
    elif coming is not None:
        coming(int(announced))


class Backend(Protocol):
    """Connections of one database: SqliteBackend (sqlite_db.py) or PgBackend (pg_db.py)."""

    dialect: Dialect

    async def open(self) -> None: ...
    async def close(self) -> None: ...
    def transaction(self, *, background: bool = False) -> AbstractAsyncContextManager[Db]:
        """One write transaction. `background`: bulk work (a dispatcher's routine claims and records) that lets
        any other writer waiting for the same single writer (SQLite) go first."""
        ...

    def schema_change(self) -> AbstractAsyncContextManager[Db]:
        """The migrations' one transaction. On SQLite, with foreign keys unenforced until every reference has been
        checked before its commit, when it changed anything (SQLite's documented way to rebuild a table that other
        tables refer to: with them enforced, dropping the old table would delete the rows that refer to it)."""
        ...

    async def run(self, work: Callable[[Db], Awaitable[T]], *, background: bool = False, urgent: bool = False,
                  yielding: bool = False, single: bool = False, idle: bool = False) -> T:
        """`work` as one write transaction, like `transaction`; SQLite runs it whole on its writer's thread (the
        hot paths: publish, claim, record, so that the single writer is held for their SQL only), after every
        other transaction queued if `idle` (delivery reports applied: a fan-out's claims and records first). `urgent`
        (life-safety work) makes a `yielding` transaction in progress (a routine publish) stop, roll back and
        run again after it (SQLite's single writer: `give_way.py`). `single`: `work` needs no transaction around
        its statements (each may commit by itself), so PostgreSQL runs them without one (no BEGIN and COMMIT: two
        round trips fewer); SQLite's writer runs it as a transaction all the same."""
        ...

    @property
    def reader(self) -> Db: ...

    async def bulk_read(self, work: Callable[[Db], Awaitable[T]]) -> T:
        """`work`'s reads for the routine bulk work (a claim's hundreds of rows): where the reader is one connection
        (SQLite), on a connection of their own, so that a red warning's reads never queue behind them, and run whole
        on its thread, so that the rows are unpacked there rather than on the event loop."""
        ...

    async def run_script(self, db: Db, script: str) -> None: ...
    async def after_erasure(self) -> None: ...

    async def after_bulk_load(self, tables: Sequence[str]) -> None:
        """After many rows were added at once (an import): what the planner knows of `tables` is brought up to
        date, so that the next fan-out is planned for the tables as they are now."""
        ...

    def queue_watch(self, wake: Callable[[int, str | None], None],
                    coming: Callable[[int], None] | None = None) -> AbstractAsyncContextManager[QueueWatch]:
        """While open, `wake(priority, alert_id)` soon after another process commits new delivery rows (the
        highest priority they have, and an alert of a row of it, or None when not known), so that a worker claims
        them at once rather than at its next poll (PostgreSQL: LISTEN, migrations 0022 and 0024, every row; SQLite:
        a FIFO of its own, `queued_signs.py`, the fan-outs the store tells of, `queued`), and `coming(priority)`
        when another process `announce`s rows it is about to store. The poll stays: a lost notification only
        leaves it. The `QueueWatch` it yields says whether every row committed is told of now."""
        ...

    async def announce(self, priority: int) -> None:
        """Tell the other processes' watchers that delivery rows of `priority` are about to be stored (their
        `coming`), before the transaction that stores them."""
        ...

    def queued(self, priority: int, alert_id: str) -> None:
        """Tell the other processes' watchers that `alert_id`'s delivery rows, of `priority` at most, were just
        committed (their `wake`). PostgreSQL: nothing (its trigger told them at the commit)."""
        ...

    async def queued_again(self, priority: int, alert_id: str) -> None:
        """Tell the other processes' watchers that stored delivery rows of `alert_id`, of `priority` at most, were
        just queued again (their `wake`): a fallback, a call to make again — an update, which PostgreSQL's trigger
        does not tell of. Only a head start: a failure is logged, and the poll finds the rows."""
        ...
