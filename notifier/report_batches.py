"""Delivery reports that arrive while the store applies others are applied together.

A WeChat TEMPLATESENDJOBFINISH event is one report a request (a Tencent callback or a call result a few), and
during a fan-out they come thousands a second (WeChat reports each message, at up to the account's 4,000 a second,
and sends an event again, three times, when no answer comes within 5 s). Applied one transaction a request, the store
alone took ~3,100 single reports a second on SQLite and 280 on PostgreSQL (100 requests at a time, nothing else
running); a batch at a time, 14,600 and 5,200 (bench/RESULTS.md, twenty-seventh round).

So, per channel, one batch at a time is applied (`Store.apply_reports`: one transaction, as if the reports came one
after the other, in the order they arrived); what arrives meanwhile waits for the next batch. With nothing in flight
a report is applied at once, so a quiet store adds no delay. Each request is answered — the provider told "taken" —
only once the batch that holds its reports is committed, with its own reports' outcomes; if the batch fails, each of
its requests fails, and the provider sends them again.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Mapping
from dataclasses import dataclass, field

from channels.base import Receipt
from channels.voice.common import CallPolicy
from notifier.store import Store
from notifier.store.receipts import counted

log = logging.getLogger("notifier.receipts")

# Reports in one batch at most: a transaction of a few statements of this many rows each (a push of Aliyun's is 500;
# on SQLite ~22 µs a report of the writer's time, so ~45 ms).
BATCH_REPORTS = 2_000


@dataclass
class _Waiting:
    receipts: list[Receipt]
    done: asyncio.Future[list[str]] = field(default_factory=lambda: asyncio.get_running_loop().create_future())


def _retrieved(done: asyncio.Future[list[str]]) -> None:
    """A batch's failure is its requests' to raise; one whose provider hung up meanwhile has no one to raise it to."""
    if not done.cancelled():
        done.exception()


class ReportBatches:
    """The reports of one process's requests, applied a batch at a time per channel."""

    def __init__(self, store: Store, redial: Mapping[str, CallPolicy] | None = None,
                 batch_reports: int = BATCH_REPORTS) -> None:
        """`redial`: the call policy of each channel that calls people (`receipts.call_policies`)."""
        self._store = store
        self._redial = dict(redial or {})
        self._limit = batch_reports
        self._waiting: dict[str, list[_Waiting]] = {}
        self._draining: dict[str, asyncio.Task[None]] = {}

    async def apply(self, channel: str, receipts: list[Receipt]) -> dict[str, int]:
        """Apply one request's reports (with the others waiting for the channel's next batch); their counts by
        outcome once committed."""
        waiting = _Waiting(receipts)
        waiting.done.add_done_callback(_retrieved)
        self._waiting.setdefault(channel, []).append(waiting)
        if channel not in self._draining:
            self._draining[channel] = asyncio.create_task(self._drain(channel))
        # Shielded: a provider that hangs up does not take the reports out of a batch already being applied.
        return counted(await asyncio.shield(waiting.done))

    async def _drain(self, channel: str) -> None:
        """Apply the channel's waiting reports a batch at a time, until none waits."""
        try:
            while waiting := self._waiting.pop(channel, None):
                batch: list[_Waiting] = []
                size = 0
                while waiting and (not batch or size + len(waiting[0].receipts) <= self._limit):
                    size += len(waiting[0].receipts)
                    batch.append(waiting.pop(0))
                if waiting:  # the rest first at the next batch, before those that came meanwhile
                    self._waiting[channel] = waiting + self._waiting.get(channel, [])
                await self._apply(channel, batch)
        finally:
            del self._draining[channel]
            for left in self._waiting.pop(channel, []):  # only if cancelled (the process stops): none waits for ever
                left.done.cancel()

    async def _apply(self, channel: str, batch: list[_Waiting]) -> None:
        reports = [r for w in batch for r in w.receipts]
        try:
            outcomes = await self._store.apply_reports(channel, reports, time.time(), self._redial.get(channel))
        except Exception as exc:  # each request fails (its provider sends it again); the next batch goes on
            log.warning("delivery reports not applied", extra={"channel": channel, "receipts": len(reports),
                                                               "error": type(exc).__name__})
            for w in batch:
                if not w.done.done():
                    w.done.set_exception(exc)
            return
        except BaseException:
            for w in batch:
                w.done.cancel()
            raise
        log.info("receipts applied", extra={"channel": channel, "requests": len(batch), **counted(outcomes)})
        start = 0
        for w in batch:
            if not w.done.done():
                w.done.set_result(outcomes[start:start + len(w.receipts)])
            start += len(w.receipts)
