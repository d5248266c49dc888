"""Delivery reports are kept when they come and applied after, a batch at a time, once the sends are over.

A million SMS send back a million reports while the fan-out still runs. Applied as they came, they took the single
writer ~22 µs a report beside the sends' ~20 µs a number: the last of 1,000,000 numbers went out 63-84 s after the
publish instead of 27-34 s (bench/RESULTS.md, twenty-seventh and twenty-eighth rounds). A report's request only
needs it kept: a push is one row (`ReportBatches`, `Store.store_reports`), and the provider is answered; this applier
does the rest (`Store.apply_waiting`: the oldest pushes first, up to `batch` reports a transaction, as if one after
the other) once no fan-out's sends are under way — this process's last claim, within half a second, did not take a
whole batch, or, in a process that does not deliver (`notifier serve` beside a `notifier worker`), the store holds
fewer deliveries leased or due than a claim takes: `Dispatcher.sending` — and on SQLite queued `idle`, after every
claim and record of this process's. So while a fan-out runs its reports wait, and its coverage and a failed
report's fallback lag behind its sends. Not for long: a report that has waited `patience` goes in turn with the
sends. Not at all a push that holds a report a life-safety delivery awaits (its alert released in the last
REPORTS_FIRST_FOR seconds: `Store.store_reports`), while the sends are routine (`_first`); the life-safety
deliveries a batch queues again are claimed at once (`queued`). The silent fallback meanwhile never takes a
delivery whose report may be waiting for silent (`fallback.activate_silent`). On PostgreSQL several processes
apply apart (`SKIP LOCKED`).

Nothing stored is lost: reports a stopped process left are applied by the next applier started (`start`), and every
`look_every` by whichever process looks (on PostgreSQL, those another process is applying are left to it). A batch
that fails is tried again after a pause; its reports stay stored.

A request waits for its reports to be applied, up to `answer_within`, so that on a quiet store the provider is
answered once they count; while the applier is behind, requests are answered once stored (WeChat waits 5 s for an
answer, then sends again, three times).
"""

from __future__ import annotations

import asyncio
import collections
import logging
import time
from collections.abc import Awaitable, Callable, Mapping
from typing import Protocol

from channels.voice.common import CallPolicy
from notifier.store import Store
from notifier.store.receipts import Applied, counted
from notifier.waiting import woken

log = logging.getLogger("notifier.receipts")

BATCH = 2_000  # reports a transaction: on SQLite ~22 µs each of the writer's time, so ~45 ms
PATIENCE = 60.0  # seconds a report waits for the sends to be over, before it goes in turn with them
LOOK_EVERY = 30.0  # seconds between looks for reports another process left
ANSWER_WITHIN = 0.5  # seconds a request waits for its reports to be applied, unless the applier is behind
LOOK_SENDING = 0.1  # seconds between looks whether the sends are over
RETRY_AFTER = 1.0  # seconds before a failed batch is tried again

REPORTS_FIRST_FOR = 900.0  # seconds after a life-safety alert's release its reports go before routine sends
Count = Callable[[str, dict[str, int]], None]
Queued = Callable[[int, str], None]


class Sending(Protocol):
    """Whether a fan-out's sends (with `life_safety`, a life-safety fan-out's) are under way."""

    def __call__(self, *, life_safety: bool = False) -> Awaitable[bool]: ...


async def _never(*, life_safety: bool = False) -> bool:
    """The default `sending`: no fan-out is ever under way."""
    return False


class ReportApplier:
    """Applies the delivery reports kept (`stored`), a batch at a time, in the background of one process."""

    def __init__(self, store: Store, redial: Mapping[str, CallPolicy] | None = None, *, batch: int = BATCH,
                 patience: float = PATIENCE, look_every: float = LOOK_EVERY, answer_within: float = ANSWER_WITHIN,
                 count: Count | None = None, sending: Sending = _never,
                 queued: Queued | None = None) -> None:
        """`redial`: the call policy of each channel that calls people (`receipts.call_policies`); `count`: told the
        outcomes of each batch, by channel (metrics); `sending`: whether a fan-out's sends are under way, this
        process's or another's (`Dispatcher.sending`); `queued`: told (priority, alert id) of the life-safety
        deliveries a batch queued again — a failure's next channel, a call to make again — so that this process's
        worker claims them at once (`Dispatcher.queued_rows`; the store tells other processes')."""
        self._store = store
        self._redial = dict(redial or {})
        self._batch, self._patience, self._look_every = batch, patience, look_every
        self._answer_within = answer_within
        self._count = count
        self._sending = sending
        self._queued = queued
        self._stored = 0  # stores committed in this process, numbered in order
        self._applied = 0  # every store up to this number applied
        self._since: collections.deque[tuple[int, float]] = collections.deque()  # (number, when) of stores waiting
        self._progress = asyncio.Condition()
        self._wake = asyncio.Event()
        self._behind = False  # a request waited answer_within in vain: answer once stored until caught up
        self._late = False  # reports waited `patience`: applied in turn with the sends until caught up
        # Stores of life-safety pushes in this process, and how many of them a look found all applied (`_first`);
        # set at each: a wait for the sends to end looks at once.
        self._life_safety_stored = self._life_safety_applied = 0
        self._life_safety_came = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        """Start applying (what is stored already first: a stopped process's reports)."""
        if self._task is None:
            self._task = asyncio.create_task(self._run())
        self._wake.set()

    async def close(self) -> None:
        """Stop (a batch being applied rolls back, on SQLite commits: either way nothing is lost)."""
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)

    @property
    def behind(self) -> bool:
        """Whether requests are answered once stored, without waiting for their reports to be applied."""
        return self._behind

    def stored(self, life_safety: bool = False) -> int:
        """A store of reports committed in this process — with `life_safety`, one that holds a report a life-safety
        delivery awaits (`Store.store_reports`) —: its number, to wait for (`applied`)."""
        if life_safety:
            self._life_safety_stored += 1
            self._life_safety_came.set()
        self._stored += 1
        self._since.append((self._stored, time.monotonic()))
        self.start()
        return self._stored

    async def applied(self, number: int) -> None:
        """Until the store `number` is applied, or `answer_within` (not at all while the applier is behind)."""
        if self._behind or self._applied >= number:
            return
        try:
            async with asyncio.timeout(self._answer_within), self._progress:
                await self._progress.wait_for(lambda: self._applied >= number)
        except TimeoutError:
            self._behind = True

    async def _run(self) -> None:
        while True:
            await woken(self._wake, self._look_every)
            self._wake.clear()
            try:
                await self._apply_all()
            except Exception:  # the reports stay stored; the next try applies them
                log.warning("delivery reports not applied; trying again", exc_info=True)
                await asyncio.sleep(RETRY_AFTER)
                self._wake.set()

    async def _apply_all(self) -> None:
        """Batches until one leaves none waiting: every report stored before that one began is then applied."""
        while True:
            seen = self._stored
            done = await self._apply_batch()
            self._done(done)
            if not done.more:
                break
        while self._since and self._since[0][0] <= seen:
            self._since.popleft()
        self._behind = self._behind and bool(self._since)
        self._late = self._late and bool(self._since)
        async with self._progress:
            self._applied = seen
            self._progress.notify_all()

    def _done(self, done: Applied) -> None:
        """A batch applied: the life-safety deliveries it queued again told of, its outcomes counted."""
        if self._queued is not None:
            for alert_id, priority in done.requeued.items():
                self._queued(priority, alert_id)
        by_channel: dict[str, list[str]] = {}
        for _, channel, outcomes in done.pushes:
            by_channel.setdefault(channel, []).extend(outcomes)
        for channel, outcomes in by_channel.items():
            counts = counted(outcomes)
            log.info("receipts applied", extra={"channel": channel, **counts})
            if self._count is not None:
                self._count(channel, counts)

    async def _apply_batch(self) -> Applied:
        """One batch: once no fan-out is sending (`sending`), and on SQLite after the writer's other work —
        until the oldest report stored here has waited `patience`; then in turn with the sends. Meanwhile the pushes
        that hold a report a life-safety delivery awaits go at once, in turn with routine sends (`_first`)."""
        # Looked at, not told: `sending` is a time since the last claim, or what the store holds.
        while (left := self._left()) > 0 and await self._sending():
            self._life_safety_came.clear()
            if await self._first():
                await self._apply_life_safety()
                continue
            await woken(self._life_safety_came, min(LOOK_SENDING, left))
        if left > 0:
            try:
                async with asyncio.timeout(left):
                    return await self._store.apply_waiting(self._redial, self._batch, idle=True)
            except TimeoutError:
                pass
        if not self._late:
            self._late = True
            log.info("delivery reports waited %g s for the sends; applied in turn with them", self._patience)
        return await self._store.apply_waiting(self._redial, self._batch)

    async def _first(self) -> bool:
        """Whether pushes wait that go before the sends under way: this process stored one that holds a report a
        life-safety delivery awaits — its coverage, a failure's next channel, a call to make again are worth more
        than a routine fan-out's speed (during 300,000 SMS, a red warning's next channel came 13 s after its publish,
        when the sends were over; 2–8 s when its report went in turn behind every routine one before it) — and the
        sends are not a life-safety fan-out's, whose people's first channel goes before anyone's next."""
        return (self._life_safety_stored > self._life_safety_applied
                and not await self._sending(life_safety=True))

    async def _apply_life_safety(self) -> None:
        """The life-safety pushes waiting, oldest first, in turn with the sends, before the older routine ones: a
        routine delivery's report among them may so be applied before an earlier one of its own — a repeat, or a
        call's second report, whose outcome is the same either way."""
        stored = self._life_safety_stored
        while True:
            done = await self._store.apply_waiting(self._redial, self._batch, life_safety=True)
            self._done(done)
            if not done.more:
                self._life_safety_applied = stored
                return

    def _left(self) -> float:
        """How much longer the oldest report stored here may wait for the sends."""
        return self._patience - (time.monotonic() - self._since[0][1]) if self._since else self._patience
