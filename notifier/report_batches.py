"""Delivery reports that arrive while the store stores others are stored together.

A WeChat TEMPLATESENDJOBFINISH event is one report a request (a Tencent callback or a call result a few), and
during a fan-out they come thousands a second (WeChat reports each message, at up to the account's 4,000 a second,
and sends an event again, three times, when no answer comes within 5 s). Applied one transaction a request, the store
alone took ~3,100 single reports a second on SQLite and 280 on PostgreSQL (100 requests at a time, nothing else
running); a batch at a time, 14,600 and 5,200 (bench/RESULTS.md, twenty-seventh round).

So, per channel, one batch at a time is stored (`Store.store_reports`: one row, its reports in the order they
arrived, applied together after); what arrives meanwhile waits for the next batch. With nothing in flight a report
is stored at once, so a quiet store adds no delay. The applier then applies them (`report_applier.py`). Each
request is answered — the provider told "taken" — only once the batch that holds its reports is committed, and
applied, or the applier is behind (`ReportApplier.applied`); if the batch fails, each of its requests fails, and the
provider sends them again.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass, field

from channels.base import Receipt
from notifier.report_applier import REPORTS_FIRST_FOR, ReportApplier
from notifier.store import Store

log = logging.getLogger("notifier.receipts")

# Reports in one batch at most: one row of this many (a push of Aliyun's is 500), applied together after.
BATCH_REPORTS = 2_000


@dataclass
class _Waiting:
    receipts: list[Receipt]
    # Once stored: the store's number (`ReportApplier.stored`).
    done: asyncio.Future[int] = field(default_factory=lambda: asyncio.get_running_loop().create_future())


def _retrieved(done: asyncio.Future[int]) -> None:
    """A batch's failure is its requests' to raise; one whose provider hung up meanwhile has no one to raise it to."""
    if not done.cancelled():
        done.exception()


class ReportBatches:
    """The reports of one process's requests, stored a batch at a time per channel, applied by `applier`."""

    def __init__(self, store: Store, applier: ReportApplier, batch_reports: int = BATCH_REPORTS) -> None:
        self._store = store
        self._applier = applier
        self._limit = batch_reports
        self._waiting: dict[str, list[_Waiting]] = {}
        self._draining: dict[str, asyncio.Task[None]] = {}

    async def apply(self, channel: str, receipts: list[Receipt]) -> None:
        """Store one request's reports (with the others waiting for the channel's next batch), and wait for them to
        be applied (`ReportApplier.applied`)."""
        waiting = _Waiting(receipts)
        waiting.done.add_done_callback(_retrieved)
        self._waiting.setdefault(channel, []).append(waiting)
        if channel not in self._draining:
            self._draining[channel] = asyncio.create_task(self._drain(channel))
        # Shielded: a provider that hangs up does not take the reports out of a batch already being stored.
        await self._applier.applied(await asyncio.shield(waiting.done))

    async def _drain(self, channel: str) -> None:
        """Store the channel's waiting reports a batch at a time, until none waits."""
        try:
            while waiting := self._waiting.pop(channel, None):
                batch: list[_Waiting] = []
                size = 0
                while waiting and (not batch or size + len(waiting[0].receipts) <= self._limit):
                    size += len(waiting[0].receipts)
                    batch.append(waiting.pop(0))
                if waiting:  # the rest first at the next batch, before those that came meanwhile
                    self._waiting[channel] = waiting + self._waiting.get(channel, [])
                await self._store_batch(channel, batch)
        finally:
            del self._draining[channel]
            for left in self._waiting.pop(channel, []):  # only if cancelled (the process stops): none waits for ever
                left.done.cancel()

    async def _store_batch(self, channel: str, batch: list[_Waiting]) -> None:
        reports = [r for w in batch for r in w.receipts]
        try:
            now = time.time()
            life_safety = await self._store.store_reports(channel, reports, now, now - REPORTS_FIRST_FOR)
        except Exception as exc:  # each request fails (its provider sends it again); the next batch goes on
            log.warning("delivery reports not stored", extra={"channel": channel, "receipts": len(reports),
                                                              "error": type(exc).__name__})
            for w in batch:
                if not w.done.done():
                    w.done.set_exception(exc)
            return
        except BaseException:
            for w in batch:
                w.done.cancel()
            raise
        number = self._applier.stored(life_safety)
        for w in batch:
            if not w.done.done():
                w.done.set_result(number)
