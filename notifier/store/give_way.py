"""On SQLite a routine publish gives the single writer up to life-safety work.

SQLite has one writer. A routine disclosure to a whole city freezes its audience in one transaction — 5–25 s at
1,000,000 people on a small machine — and a red warning published meanwhile would wait for all of it before being
stored, and its claims would wait again. So a *yielding* transaction (a routine publish or approval, a bulk
import, the dispatcher's routine claims and records) is interrupted when an *urgent* one (a life-safety publish, a
cancel, a life-safety claim or record) asks for the writer: its statement in progress is stopped
(`sqlite3.Connection.interrupt`, made to be called from another thread; asked again every `NUDGE_SECONDS` while the
urgent one waits, because an interrupt that comes between two statements is forgotten by the next one), it rolls
back, the urgent one goes, and it is run again from the start once no urgent transaction has asked for
`QUIET_SECONDS` (a routine claim or record, a few milliseconds of work, at its next turn instead, once another
process's urgent transaction it gave way to is done) — after at most `MAX_GIVE_WAYS` it runs to its end whatever
comes. Work is lost, never a result: the routine publish commits whole or not at all, and its caller is answered
after its commit, as before. PostgreSQL needs none of this: its writers do not wait for each other's transactions.

The urgent transaction may be in another process on the same database file (`notifier publish` or a
`notifier worker` beside `notifier serve`): there it waits in SQLite's own lock, not in ours. So a waiting urgent
transaction also renews a sign every process can see — an empty file beside the database, `<database>-urgent`,
whose modification time it sets every `NUDGE_SECONDS` (`UrgentSign`) — and a yielding transaction in progress is
watched by its own process, which interrupts it when the sign is fresh; the quiet time counts from the sign too. The
dispatcher's routine claims and records, milliseconds each, have no watcher: they look at the sign when they begin
(`arm`) and before each statement (`check`)."""

from __future__ import annotations

import asyncio
import math
import os
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

QUIET_SECONDS = 1.0  # a routine publish that gave way starts again after this long without an urgent request
MAX_GIVE_WAYS = 10  # … and after giving way this often, runs to its end: it must finish some time
NUDGE_SECONDS = 0.01
FRESH_SECONDS = 0.1  # a sign renewed this recently: an urgent transaction is waiting now (renewed every nudge)


class Waiters:
    """How many are waiting for something, and an event set while none is (both of the writer's queues)."""

    def __init__(self) -> None:
        self.count = 0
        self.none = asyncio.Event()
        self.none.set()

    @contextmanager
    def waiting(self) -> Iterator[None]:
        self.count += 1
        self.none.clear()
        try:
            yield
        finally:
            self.count -= 1
            if not self.count:
                self.none.set()


class UrgentSign:
    """`<database>-urgent`: an empty file whose modification time urgent transactions waiting for the writer renew,
    for the other processes on the same database file. A process reads past its own renewals: its own urgent
    transactions already ask in-process (`GiveWay.keep_asking`)."""

    def __init__(self, database: Path) -> None:
        self.path = database.with_name(database.name + "-urgent")
        self._mine = 0  # the modification time (ns) this process last set

    def renew(self) -> None:
        self._mine = time.time_ns()
        try:
            os.utime(self.path, ns=(self._mine, self._mine))
        except FileNotFoundError:
            self.path.touch()
            os.utime(self.path, ns=(self._mine, self._mine))

    def age(self) -> float:
        """Seconds since another process's urgent transaction last renewed it (infinite when none did, or when the
        last renewal was this process's)."""
        try:
            renewed = os.stat(self.path).st_mtime_ns
        except FileNotFoundError:
            return math.inf
        return math.inf if renewed == self._mine else (time.time_ns() - renewed) / 1e9


class GaveWay(Exception):
    """A yielding transaction stopped and rolled back for an urgent one."""


class GiveWay:
    """Shared by the event loop's thread (urgent transactions asking for the writer) and the writer's thread (the
    yielding transaction in progress, which checks before each statement and is interrupted within one)."""

    def __init__(self, interrupt: Callable[[], None], sign: UrgentSign, urgent_queued: Callable[[], bool]) -> None:
        self._interrupt = interrupt
        self._sign = sign
        # Whether an urgent transaction of this process waits for the writer now (the writer's queue): not the
        # askers still counted while theirs runs, or a yielding one right behind it would give way for nothing.
        self._urgent_queued = urgent_queued
        self._guard = threading.Lock()  # an interrupt lands only while a yielding transaction is before its COMMIT
        self._armed = False
        self._asked = False
        self._urgent = Waiters()
        self._last_asked = -QUIET_SECONDS

    # The event loop's side.

    async def keep_asking(self) -> None:
        """An urgent transaction waits for the writer: run as a task until it is done, then cancel (it asks while it
        is queued)."""
        with self._urgent.waiting():
            while True:
                self._last_asked = time.monotonic()
                if self._urgent_queued():
                    self._ask()
                await asyncio.sleep(NUDGE_SECONDS)

    async def announce(self) -> None:
        """An urgent transaction waits for the writer or runs: tell the other processes (run as a task, cancel)."""
        while True:
            self._sign.renew()
            await asyncio.sleep(NUDGE_SECONDS)

    async def watch(self) -> None:
        """A yielding transaction runs: make it give way when an urgent one of another process waits (run as a
        task, cancel). This process's own urgent transactions ask through `keep_asking`."""
        while True:
            if self._sign.age() < FRESH_SECONDS:
                self._ask()
            await asyncio.sleep(NUDGE_SECONDS)

    def _ask(self) -> None:
        """Make the yielding transaction in progress, if any, give way: stop its statement now."""
        with self._guard:
            if self._armed:
                self._asked = True
                self._interrupt()

    async def quiet(self) -> None:
        """Return once no urgent transaction waits and none has asked for QUIET_SECONDS, in any process."""
        while True:
            await self._urgent.none.wait()
            left = max(self._last_asked + QUIET_SECONDS - time.monotonic(), QUIET_SECONDS - self._sign.age())
            if left <= 0:
                return
            await asyncio.sleep(left)

    async def others_done(self) -> None:
        """Return once no other process's urgent transaction has renewed the sign for FRESH_SECONDS — at most after
        QUIET_SECONDS. For a routine claim or record that gave way: this process's urgent ones go first by its own
        queue, but another process's waits in SQLite's lock, which it would find taken again at once."""
        deadline = time.monotonic() + QUIET_SECONDS
        while True:  # a file's time, nothing to wait on but the clock: asleep until the sign would be stale
            left = min(FRESH_SECONDS - self._sign.age(), deadline - time.monotonic())
            if left <= 0:
                return
            await asyncio.sleep(left)

    # The writer thread's side, around one yielding transaction.

    def arm(self) -> None:
        """The yielding transaction begins (an urgent one already waiting makes it give way at once)."""
        with self._guard:
            self._armed, self._asked = True, self._urgent_queued() or self._sign.age() < FRESH_SECONDS
        self.check()

    def check(self) -> None:
        """Before each statement: give way if asked — or if another process's urgent transaction has renewed the
        sign since the transaction began. A background one, which no watcher interrupts, otherwise ran all its
        statements while a red warning's claim in another process waited (`notifier worker` beside `notifier
        serve`, which applies the delivery reports and adds a large publish's rows). A look is a stat (~2 µs)."""
        if not self._asked and self._sign.age() < FRESH_SECONDS:
            with self._guard:
                self._asked = self._armed
        if self._asked:
            raise GaveWay

    def disarm(self) -> bool:
        """Before COMMIT or ROLLBACK: no interrupt lands after this. True when it was asked to give way."""
        with self._guard:
            self._armed = False
            return self._asked
