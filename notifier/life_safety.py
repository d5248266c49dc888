"""Life-safety work first on the event loop, not only in the queue.

During a large fan-out one process's event loop has hundreds of routine requests in flight, and every step of a
red warning — its publish's statements, its claim, its send — waits for a turn of that loop behind all of their
callbacks (2–15 ms a turn, measured, for some thirty turns). While the window is open, this process starts no
new routine claim or send: what is in flight finishes, and the loop turns quickly for the warning. Routine
sending pauses only for as long as life-safety work is at hand.

Who opens it: a publish, cancel or approval through the API while its key is checked (`tentatively`: not after a
refused key, for a second) and while it is being stored (any alert: a publish's severity is known only once its
body is read, and an operator waits for the answer); a life-safety alert's publish then hands the window to the
life-safety claim loop (`hand_over`, with a time limit so that a process without that loop never stalls its
routine work), which holds it for as long as it holds deliveries (`held`)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import TypeVar

T = TypeVar("T")
R = TypeVar("R")

TENTATIVE_PAUSE = 1.0  # after a refused tentative holder
HAND_OVER_SECONDS = 2.0  # a hand-over the life-safety loop never took (no worker here) closes by itself
# How long routine work already under way — a routine chunk's answers to turn into results, a provider's push of
# delivery reports to parse — waits for the window (`routine_turn(at_most=…)`): a red warning's cycle takes tens of
# milliseconds, but a whole red fan-out holds the window for as long as it runs, and what was sent and is not yet
# recorded would be sent again after a crash, and a provider gives up on a push it is not answered.
UNDER_WAY_WAIT = 1.0
# Items of routine Python work (a chunk's recipients, its answers turned into results, a claim's deliveries looked
# over) done in one turn of the event loop (`routine_map`): a thousand of them in one turn were a step of 5-20 ms
# under a fan-out with reports (measured, 300,000 SMS), and a request that arrived meanwhile — a red warning's
# publish — was not even read before it ended.
ROUTINE_SLICE = 200


class LifeSafetyWindow:
    """Open while any holder holds it; routine work waits for it to close before starting anything new."""

    def __init__(self, hand_over_limit: float = HAND_OVER_SECONDS) -> None:
        self._hand_over_limit = hand_over_limit
        self._holders = 0
        self._closed = asyncio.Event()
        self._closed.set()
        self._handed: list[asyncio.TimerHandle] = []
        self._tentative_until = 0.0  # tentative holds are suspended until then (monotonic)

    @property
    def is_open(self) -> bool:
        return self._holders > 0

    @contextmanager
    def held(self) -> Iterator[None]:
        self._open()
        try:
            yield
        finally:
            self._close()

    @contextmanager
    def tentatively(self) -> Iterator[None]:
        """Held while a request that may bring life-safety work is identified (its key checked), so that the
        routine requests in flight finish meanwhile instead of after. A holder that fails (a refused key) suspends
        tentative holds for TENTATIVE_PAUSE: requests with bad keys cannot keep routine work paused."""
        if time.monotonic() < self._tentative_until:
            yield
            return
        self._open()
        try:
            yield
        except BaseException:
            self._tentative_until = time.monotonic() + TENTATIVE_PAUSE
            raise
        finally:
            self._close()

    def hand_over(self) -> None:
        """Keep the window open until the life-safety loop's next cycle ends (`take_hand_overs`), or at most
        HAND_OVER_SECONDS."""
        self._open()
        self._handed.append(asyncio.get_running_loop().call_later(self._hand_over_limit, self._expire))

    def take_hand_overs(self) -> int:
        """The hand-overs the cycle about to start takes on (it closes them with `close_hand_overs`)."""
        taken, self._handed = self._handed, []
        for timer in taken:
            timer.cancel()
        return len(taken)

    def close_hand_overs(self, taken: int) -> None:
        for _ in range(taken):
            self._close()

    async def routine_turn(self, at_most: float | None = None) -> None:
        """Return once no life-safety work holds the window (at once when none does), or after `at_most` seconds."""
        if not self._holders:
            return
        try:
            async with asyncio.timeout(at_most):
                while self._holders:
                    await self._closed.wait()
        except TimeoutError:
            return

    async def routine_map(self, work: Callable[[T], R], items: Sequence[T], *, life_safety: bool = False,
                          at_most: float | None = None) -> list[R]:
        """`work` of each item. Life-safety work (`life_safety`) at once; routine work ROUTINE_SLICE items at a time,
        each slice taken once no life-safety work holds the window (waiting `at_most` seconds in all, if given) and,
        after the first, in a turn of the event loop of its own — and when there was more than one, what the caller
        does next with the items (a channel's own work on a chunk) gets a turn of its own too: what arrives
        meanwhile (a publish, a claim's answer) is read between two slices, not after all of them. Fewer items than
        a slice cost no turn: a webhook chunk's forty, inside its send slot, would hold the slot a turn longer for
        nothing."""
        if life_safety:
            return list(map(work, items))
        deadline = None if at_most is None else time.monotonic() + at_most

        async def turn(of_its_own: bool) -> None:
            if of_its_own:  # a turn of the loop: what came in meanwhile is read before what follows
                await asyncio.sleep(0)
            await self.routine_turn(None if deadline is None else max(0.0, deadline - time.monotonic()))

        slices = range(0, len(items), ROUTINE_SLICE)
        done: list[R] = []
        for start in slices:
            await turn(of_its_own=start > 0)
            done += map(work, items[start:start + ROUTINE_SLICE])
        if len(slices) > 1:
            await turn(of_its_own=True)
        return done

    def _expire(self) -> None:
        self._handed.pop(0)  # timers fire in the order they were set, so the oldest is the one expiring
        self._close()

    def _open(self) -> None:
        self._holders += 1
        self._closed.clear()

    def _close(self) -> None:
        self._holders -= 1
        if not self._holders:
            self._closed.set()
