"""Delivery workers: claim due deliveries under a lease, render once per alert × channel × locale, send in the
channel's batch size within its rate limit, and write every result of a claim back in one transaction.

A claim that is never written back (the process died) is reclaimed by any worker's sweep when its lease ends,
and sent again: duplicates are limited to sends that were in flight, and carry the same delivery id
(webhook-id, Message-ID, client_msg_id) so that receivers can drop them.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import math
import time
import uuid
from collections import Counter, defaultdict
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import NamedTuple

from channels.base import Channel, DeliveryResult, Message, Outcome, Recipient
from channels.errors import PermanentDeliveryError, TransientDeliveryError
from channels.voice.speech import spoken
from notifier.approval import reject_overdue
from notifier.assist import AssistNotes, issued_at
from notifier.compliance import NOTICE_EVERY
from notifier.config import ApprovalSettings, WorkerSettings
from notifier.life_safety import UNDER_WAY_WAIT, LifeSafetyWindow
from notifier.links import LINK_CHANNELS, MessageLinks
from notifier.metrics import Metrics
from notifier.models import (
    Alert,
    AlertStatus,
    Priority,
    Severity,
    Topic,
    Urgency,
    bypasses_quiet_hours,
)
from notifier.publish import alert_view
from notifier.ratelimit import RateLimiter
from notifier.receipts import call_policies, sweep_unmatched
from notifier.rendering import Renderer
from notifier.retry import RetryPolicy
from notifier.states import DeliveryStatus
from notifier.store import Store
from notifier.store.db import QueueWatch
from notifier.store.records import AlertRow, AssistItem, ClaimedDelivery, DeliveryUpdate
from notifier.targeting import delivery_priority
from notifier.verification import purge_unverified
from notifier.waiting import woken
from subscriptions.quiet_hours import quiet_until

log = logging.getLogger("notifier.dispatch")
FAILED = DeliveryStatus.FAILED
LATER = (DeliveryStatus.QUEUED, DeliveryStatus.DEFERRED)  # a result that sends again later
SWEEP_EVERY = 1.0
SOONEST_LOOK = 0.01  # seconds: the life-safety loop's shortest idle wait (a row due already, but not its yet)
PURGE_EVERY = 600.0
# A dispatcher whose last claim, this recent, took a whole batch is in a fan-out: delivery reports wait (`sending`).
SENDING_QUIET = 0.5


def sending_shape(settings: WorkerSettings, max_batch: int) -> tuple[int, int]:
    """(chunks in flight, routine chunk size) of a channel taking up to `max_batch` recipients a call.

    `concurrency` counts recipients in flight; a chunk of max_batch recipients takes its share of slots (at least
    four chunks, so that batch APIs such as SMS are not latency-bound on one request). Channels with a request per
    recipient on the shared session send routine chunks small enough that all their slots together hold at most
    the routine share of its pool (`concurrency` connections): the rest stays free for life-safety."""
    slots = max(4, settings.concurrency // max_batch)
    routine_share = int(settings.concurrency * (1 - settings.life_safety_share))
    return slots, max(1, routine_share // slots)


def claim_size(claim_batch: int, batch_requests: Iterable[int]) -> int:
    """How many deliveries a claim leases: `claim_batch`, rounded up to whole requests of the largest batch channel
    (`batch_requests`: each batch channel's numbers a request — Aliyun SendSms 1,000, Tencent 200). A smaller claim
    would split a provider request and multiply the store's transactions a number; one that is not a multiple would
    end in a part request (Tencent at 500: 200 + 200 + 100, six requests for 1,000 numbers instead of five)."""
    full = max(batch_requests, default=1)
    return -(-claim_batch // full) * full


class _Known(NamedTuple):
    """What the dispatcher keeps of an alert it has sent for (read once, `Store.alert_to_send`)."""

    alert: AlertRow
    topic: Topic
    assisted: bool  # assisted people are among its targets: their proxies' messages list them
    life_safety: bool
    keeps_quiet: bool  # subscribers' quiet hours hold it back


@dataclass
class DispatchStats:
    """Counters since start (read by metrics and progress displays)."""

    claimed: int = 0
    results: dict[str, int] = field(default_factory=lambda: defaultdict(int))


class Dispatcher:
    """One process's delivery worker."""

    def __init__(self, store: Store, channels: Mapping[str, Channel], renderer: Renderer,
                 settings: WorkerSettings, *, clock: Callable[[], float] = time.time,
                 metrics: Metrics | None = None,
                 secret: str | None = None, public_url: str | None = None,
                 overdue: Callable[[float], Awaitable[int]] | None = None,
                 approval: ApprovalSettings | None = None) -> None:
        self.store = store
        # Tells departments of overdue catalogue disclosures (notifier.compliance.OverdueNotices), if configured.
        self._overdue = overdue
        self._last_overdue = 0.0
        self._approval = approval or ApprovalSettings()  # held alerts nobody decided on in time are rejected
        # Signs the manage/unsubscribe links put in messages (notifier.links); without both, no links.
        self._link_secret = secret
        self._public_url = public_url
        self.channels = dict(channels)
        self.renderer = renderer
        self.settings = settings
        self.retry = RetryPolicy(settings)
        self._redial = call_policies(self.channels)  # voice: early call results that ask for another call
        self._assist = AssistNotes(store, secret, public_url)  # proxies: the people each is to tell
        self.clock = clock
        # time.monotonic() of the last claim that took a whole batch, and of the last life-safety one (`sending`)
        self._full_claim_at = {False: -math.inf, True: -math.inf}
        self.stats = DispatchStats()
        self.metrics = metrics
        self._wake = asyncio.Event()
        self._urgent_wake = asyncio.Event()
        # While life-safety work is at hand, routine work starts nothing new in this process (notifier.life_safety).
        self.window = LifeSafetyWindow()
        # One bucket per provider account (channel kind), shared through the store by every worker process.
        self._limiters = {kind: RateLimiter(store, f"channel:{kind}", ch.rate_per_second,
                                            reserve=settings.life_safety_share)
                          for kind, ch in self.channels.items()}
        self._alerts: dict[str, _Known] = {}
        self._reading_ahead: dict[str, asyncio.Task[_Known]] = {}  # life-safety alerts read while being claimed
        self._claim_size = claim_size(settings.claim_batch, (ch.max_batch for ch in self.channels.values()
                                                              if getattr(ch, "one_request_per_batch", False)))
        shapes = {kind: sending_shape(settings, ch.max_batch) for kind, ch in self.channels.items()}
        self._send_slots = {kind: asyncio.Semaphore(slots) for kind, (slots, _) in shapes.items()}
        # Life-safety sends have slots of their own: a red warning never queues behind routine chunks in flight.
        self._urgent_slots = {kind: asyncio.Semaphore(slots) for kind, (slots, _) in shapes.items()}
        self._routine_chunk = {kind: chunk for kind, (_, chunk) in shapes.items()}
        self._last_sweep = 0.0
        self._last_purge = 0.0
        self._running = False  # the claim loops run in this process (`run`): a life-safety publish hands over
        # Whether this process is told of every delivery row another process queues (`Backend.queue_watch`).
        self._told = QueueWatch()

    async def sending(self, *, life_safety: bool = False) -> bool:
        """Whether a fan-out's sends (with `life_safety`, a life-safety fan-out's) are under way: the delivery
        reports' applier leaves the store to them meanwhile (`report_applier.py`). A process that delivers sees a
        fan-out in its own claims — every worker claims from it — its last, within SENDING_QUIET seconds, took a
        whole batch (of life-safety rows: a life-safety claim's, which is every claim of them while the process is
        told of each row queued); one that does not (`notifier serve` beside a `notifier worker`) asks the store: as
        many deliveries leased or due now as a claim takes (a read, which a quiet store's one-report request need
        not pay for where the process delivers)."""
        if time.monotonic() - self._full_claim_at[life_safety] < SENDING_QUIET:
            return True
        return not self._running and await self.store.sends_under_way(
            time.time(), self._claim_size, Priority.LIFE_SAFETY if life_safety else Priority.ROUTINE)

    def wake(self, released: AlertRow | None = None) -> None:
        """New work was queued in this process — `released`'s rows, if named (a publish, an approval, a cancel
        notice, a slice of a large publish's rows added after its answer): look now rather than at the next poll.
        A life-safety alert due now hands the window over to the life-safety loop, so that no routine work starts
        before that loop has claimed it; one not due (scheduled) wakes that loop alone, which then waits until it
        is due (`_idle`), and pauses nothing. Rows of a routine alert wake the routine loops alone (`queued`)."""
        if released is None:
            self.queued(False)
        elif _life_safety(released) and released.status != AlertStatus.ACTIVE:
            self._urgent_wake.set()
        else:
            self.queued(_life_safety(released), released.id)

    def queued(self, life_safety: bool, alert_id: str | None = None) -> None:
        """New work was queued, life-safety work or not, `alert_id`'s if known (`wake`; or in another process, or
        queued again: `queued_rows`). A life-safety alert named is read while its rows are claimed. The life-safety
        loop is woken for life-safety work, or for work it cannot know is not (no alert named: what PostgreSQL
        queued while nobody listened, a worker of an earlier version's sign); a routine alert's rows need the
        routine loops alone — woken by each of a million people's 500 slices on SQLite, the life-safety loop ran as
        many empty claims, each ahead of the routine claims and records on the single writer."""
        if life_safety and alert_id is not None:
            self._read_ahead(alert_id)
        self._hand_over(life_safety)
        self._wake.set()
        if life_safety or alert_id is None:
            self._urgent_wake.set()

    def _hand_over(self, life_safety: bool) -> None:
        """Life-safety work is at hand: no routine work starts until the life-safety loop has taken it over."""
        if life_safety and self._running:
            self.window.hand_over()

    def queued_rows(self, priority: int, alert_id: str | None = None) -> None:
        """Deliveries were queued, the highest of them of `priority`, `alert_id`'s among them if known: by another
        process (`Backend.queue_watch`), or queued again by this one's records, sweeps and delivery reports (a
        fallback, a call to make again: `fallback.Requeued`)."""
        self.queued(priority >= Priority.LIFE_SAFETY, alert_id)

    def _read_ahead(self, alert_id: str) -> None:
        """Start reading a life-safety alert just queued while the life-safety loop claims its rows, so that the
        claim finds it known: read after the claim, it took 1-16 ms of a red warning's way on a worker busy with a
        large fan-out (PostgreSQL, 100,000 webhooks, seventeen probes; median 3 ms)."""
        if not self._running or alert_id in self._alerts or alert_id in self._reading_ahead:
            return
        reading = self._reading_ahead[alert_id] = asyncio.create_task(self._read(alert_id))
        reading.add_done_callback(lambda done: self._read_done(alert_id, done))

    def _read_done(self, alert_id: str, done: asyncio.Task[_Known]) -> None:
        if self._reading_ahead.get(alert_id) is done:
            del self._reading_ahead[alert_id]
        if not done.cancelled() and (error := done.exception()) is not None:  # a claim reads it again, and says
            log.debug("reading alert %s ahead of its claim failed: %r", alert_id, error)

    def coming_elsewhere(self, priority: int) -> None:
        """Another process is storing life-safety deliveries (`Backend.announce`): routine work starts nothing new
        from now, so that the requests in flight have finished when the rows come — a red warning waited for them,
        2-11 ms a turn of the event loop. The life-safety loop's next cycle closes it, or HAND_OVER_SECONDS."""
        self._hand_over(priority >= Priority.LIFE_SAFETY)

    async def run(self, stop: asyncio.Event, *, batches_in_flight: int = 4) -> None:
        """Work until `stop` is set; several claims are in flight so that sending never waits for the store, and
        one more loop claims only life-safety deliveries, so that a red warning published while a large fan-out
        keeps the others busy is claimed at once rather than when one of them comes back for more."""
        workers = [asyncio.create_task(self._loop(stop)) for _ in range(batches_in_flight)]
        workers.append(asyncio.create_task(self._loop(stop, Priority.LIFE_SAFETY)))
        self._running = True
        try:
            # Rows queued by another process (the API's, a `notifier publish`) wake the loops as this
            # process's own publishes do, where the database can say so (PostgreSQL); the poll stays beneath it.
            async with self.store.backend.queue_watch(self.queued_rows, self.coming_elsewhere) as self._told:
                await asyncio.gather(*workers)
        finally:
            self._running = False
            self._told = QueueWatch()
            for task in [*workers, *self._reading_ahead.values()]:
                task.cancel()

    async def _loop(self, stop: asyncio.Event, min_priority: Priority = Priority.ROUTINE) -> None:
        wake = self._urgent_wake if min_priority else self._wake
        while not stop.is_set():
            handed = self.window.take_hand_overs() if min_priority else 0
            # Cleared before the claim, not after: work published while the claim runs (a red warning stored just
            # after an idle claim was queued, which then found nothing due yet) wakes the wait below at once.
            wake.clear()
            try:
                worked = await (self._claim_and_send(min_priority) if min_priority else self.run_once())
            except Exception:  # a store hiccup must not kill the worker; leases make the retry safe
                log.exception("dispatch cycle failed; retrying")
                worked = 0
            finally:
                self.window.close_hand_overs(handed)
            if worked == 0 and not stop.is_set():
                await woken(wake, await self._idle(min_priority))

    async def _idle(self, min_priority: Priority) -> float:
        """How long a loop that found nothing waits before it looks again (unless woken): the poll interval, or
        for the life-safety loop until its next row is due — a retry, a deferral, a scheduled warning: nothing
        tells of those, and routine claims leave them to it while the process listens."""
        if not min_priority:
            return self.settings.poll_interval
        try:
            due = await self.store.next_due(Priority.LIFE_SAFETY)
        except Exception:  # a store hiccup must not kill the loop: it polls, as ever
            log.exception("cannot read when the next life-safety delivery is due")
            return self.settings.poll_interval
        if due is None:
            return self.settings.poll_interval
        return min(self.settings.poll_interval, max(SOONEST_LOOK, due - self.clock()))

    async def run_once(self) -> int:
        """Sweep if due, claim one batch, send it, record it; returns how many deliveries were handled."""
        now = self.clock()
        if now - self._last_sweep >= SWEEP_EVERY:
            self._last_sweep = now
            swept = await self.store.sweep(now, self.settings.max_attempts)
            if swept.get("fallback"):  # a life-safety one is left to the life-safety loop by routine claims
                self._urgent_wake.set()
            if swept.get("reclaimed"):
                log.warning("reclaimed %d deliveries whose worker stopped mid-send", swept["reclaimed"])
            if added := await self.store.finish_stalled_fan_outs(now):
                log.warning("added the delivery rows of %d publishes whose process stopped before it could", added)
            if timed_out := await reject_overdue(self.store, self._approval, now):
                log.warning("rejected %d alerts nobody approved within %g s", timed_out, self._approval.timeout)
            if now - self._last_purge >= PURGE_EVERY:
                self._last_purge = now
                await purge_unverified(self.store, now)  # sign-ups never confirmed: hold their contacts no longer
                await sweep_unmatched(self.store, now, self.settings.early_receipts_days)  # reports never matched
            if self._overdue is not None and now - self._last_overdue >= NOTICE_EVERY:
                self._last_overdue = now
                await self._overdue(now)
        return await self._claim_and_send()

    async def _claim_and_send(self, min_priority: Priority = Priority.ROUTINE) -> int:
        """Claim one batch (of at least `min_priority`), send it, record it; how many deliveries were handled.
        While life-safety work is at hand (the window is open), a routine loop helps with it or waits."""
        # Routine claims and records are the store's bulk work: other writers (a publish, the life-safety loop,
        # lease heartbeats) go first.
        background = min_priority == Priority.ROUTINE
        if background and self.window.is_open:
            if worked := await self._claim_batch(Priority.LIFE_SAFETY, background=True):
                return worked
            await self.window.routine_turn()
        return await self._claim_batch(min_priority, background=background)

    async def _claim_batch(self, min_priority: Priority, *, background: bool) -> int:
        now = self.clock()
        owner = uuid.uuid4().hex
        # A routine claim leaves life-safety rows to the life-safety claims when the process is told of each as it
        # is queued: one that took a red warning along with its 500 routine rows sent it some 60-80 ms later than
        # the life-safety loop would have (PostgreSQL, two busy cores: one probe in six). Otherwise (a lost LISTEN, a
        # SQLite process without its FIFO) routine claims still take them first, rather than leave them to the poll.
        most = Priority.URGENT if min_priority < Priority.LIFE_SAFETY and self._told.listening else Priority.LIFE_SAFETY
        claimed = await self.store.claim(owner, now, now + self.settings.lease_seconds,
                                         self._claim_size, min_priority, most,
                                         background=background)
        if not claimed:
            return 0
        if len(claimed) >= self._claim_size:  # more waits: a fan-out is on (a small alert's claim tells nothing)
            self._full_claim_at[False] = time.monotonic()
            if min_priority is Priority.LIFE_SAFETY:
                self._full_claim_at[True] = self._full_claim_at[False]
        self.stats.claimed += len(claimed)
        with self.window.held() if min_priority is Priority.LIFE_SAFETY else contextlib.nullcontext():
            heartbeat = asyncio.create_task(self._keep_lease(owner))
            try:
                outcomes = await self._process(claimed, holding=min_priority is Priority.LIFE_SAFETY)
            finally:
                heartbeat.cancel()
            # Mostly each person once: then their targets' marks need not look for a person's first time.
            people_once = len({(d.alert_id, d.subscriber_id) for d in claimed}) == len(claimed)
            recorded = await self.store.record(owner, outcomes, self.clock(), self._redial,
                                               background=background, people_once=people_once,
                                               urgent=min_priority is Priority.LIFE_SAFETY)
        for notice in recorded.noticed:  # cancel notices for sends accepted after their cancel: claimed at once
            self.wake(notice)
        for alert_id, priority in recorded.requeued.items():  # a routine claim leaves them to the life-safety loop
            self.queued_rows(priority, alert_id)
        written = set(recorded.written)
        if len(written) < len(outcomes):
            log.warning("%d results refused: their lease had been reclaimed by another worker",
                        len(outcomes) - len(written))
        retried = {o.alert_id for o in outcomes if o.status in LATER and o.delivery_id in written}
        if any(map(self._life_safety_alert, retried)):
            self._urgent_wake.set()  # a red warning's retry: the life-safety loop waits for it (`_idle`)
        counts: Counter[tuple[str, str]] = Counter(
            (d.channel, o.status) for d, o in zip(claimed, outcomes, strict=True) if o.delivery_id in written)
        for (channel, status), n in counts.items():
            self.stats.results[status] += n
            if self.metrics is not None:
                self.metrics.count_delivery(channel, status, n)
        return len(claimed)

    async def _keep_lease(self, owner: str) -> None:
        """Extend the claim's lease while it is being worked on (a rate-limited batch can outlast one lease);
        only a worker that stopped lets its lease run out."""
        interval = self.settings.lease_seconds / 3
        while True:
            await asyncio.sleep(interval)
            await self.store.extend_lease(owner, self.clock() + self.settings.lease_seconds)

    async def drain(self, timeout: float = 60.0) -> None:
        """Work until nothing is due now (tests, the demo, `publish --wait`)."""
        deadline = self.clock() + timeout
        while self.clock() < deadline:
            if await self.run_once() == 0:
                due = await self.store.next_due()
                if due is None or due > self.clock():
                    return
                await asyncio.sleep(0.01)

    # ------------------------------------------------------------ one claim

    async def _process(self, claimed: list[ClaimedDelivery], *, holding: bool = False) -> list[DeliveryUpdate]:
        """An outcome for every claimed delivery, in claim order. `holding`: a life-safety claim, which holds the
        window — its sends are life-safety work, never waiting for the window (their own)."""
        now = self.clock()
        knowns = {alert_id: await self._alert(alert_id) for alert_id in dict.fromkeys(d.alert_id for d in claimed)}
        decided: dict[str, DeliveryUpdate] = {}
        to_send: list[ClaimedDelivery] = []

        def before_send(d: ClaimedDelivery) -> DeliveryUpdate | None:
            return self._before_send(d, knowns[d.alert_id].keeps_quiet, now)

        # A routine claim's rows are looked over a slice a turn (`routine_map`); life-safety work at once.
        early = await self.window.routine_map(before_send, claimed,
                                              life_safety=holding or any(k.life_safety for k in knowns.values()))
        for d, outcome in zip(claimed, early, strict=True):
            if outcome is not None:
                decided[d.id] = outcome
            else:
                to_send.append(d)
        # A proxy's message is its own (the people it is to tell): a group of one.
        lists = await self._assist.lists(to_send, {alert_id for alert_id, k in knowns.items() if k.assisted})
        groups: dict[tuple[str, str, str, str], list[ClaimedDelivery]] = defaultdict(list)
        for d in to_send:
            proxy = d.subscriber_id if (d.alert_id, d.subscriber_id) in lists else ""
            groups[(d.alert_id, d.channel, d.locale, proxy)].append(d)
        sends = [self._send_group(knowns[key[0]], key, batch, lists, holding) for key, batch in groups.items()]
        for results in await asyncio.gather(*sends):
            decided.update(results)
        return [decided[d.id] for d in claimed]

    def _before_send(self, d: ClaimedDelivery, quiet: bool, now: float) -> DeliveryUpdate | None:
        """Outcomes decided without sending: no channel, no contact, quiet hours (`quiet`: they apply to the
        delivery's alert)."""
        if d.channel not in self.channels:
            return DeliveryUpdate(d.id, d.alert_id, FAILED, now, attempted=False,
                                  error=f"channel {d.channel} is not configured", fall_back=True)
        if d.address is None:
            return DeliveryUpdate(d.id, d.alert_id, FAILED, now, attempted=False, error="no usable contact",
                                  fall_back=True)
        if quiet:
            until = quiet_until(datetime.fromtimestamp(now, UTC), d.quiet_start, d.quiet_end)
            if until is not None:
                return DeliveryUpdate(d.id, d.alert_id, DeliveryStatus.DEFERRED, now, attempted=False,
                                      next_attempt_at=until.timestamp())
        return None

    async def _alert(self, alert_id: str) -> _Known:
        """What the dispatcher knows of an alert: kept, being read ahead of its claim, or read now."""
        known = self._alerts.get(alert_id)
        if known is not None:
            return known
        ahead = self._reading_ahead.get(alert_id)
        if ahead is not None:
            with contextlib.suppress(Exception):  # it failed: read again, and let that say why
                return await asyncio.shield(ahead)  # another claim may be waiting for it too
        return await self._read(alert_id)

    async def _read(self, alert_id: str) -> _Known:
        alert, topic, assisted = await self.store.alert_to_send(alert_id)
        if alert is None:
            raise RuntimeError(f"delivery refers to a missing alert {alert_id}")
        if topic is None:
            raise RuntimeError(f"alert {alert_id} refers to a missing topic")
        known = self._alerts[alert_id] = _Known(
            alert, Topic.model_validate(topic), assisted, _life_safety(alert),
            keeps_quiet=not bypasses_quiet_hours(Urgency(alert.urgency), Severity(alert.severity)))
        if len(self._alerts) > 1000:  # alerts are few; bound the cache anyway
            self._alerts.pop(next(iter(self._alerts)))
        return known

    def _life_safety_alert(self, alert_id: str) -> bool:
        """Whether the alert is life-safety work (one no longer known is taken to be, to be safe)."""
        known = self._alerts.get(alert_id)
        return known is None or known.life_safety

    async def _send_group(self, known: _Known, key: tuple[str, str, str, str], batch: list[ClaimedDelivery],
                          lists: dict[tuple[str, str], list[AssistItem]], holding: bool) -> dict[str, DeliveryUpdate]:
        alert_id, kind, locale, proxy = key
        # The claim's rows are life-safety by their priority (`delivery_priority`, as the alert's here): a claim
        # holding the window whose sends waited for it as routine ones would wait for itself, and all routine work
        # with it — so its sends are life-safety work whatever the alert says.
        alert, topic, life_safety = known.alert, known.topic, known.life_safety or holding
        channel = self.channels[kind]
        view = alert_view(alert)
        try:
            message = self.renderer.render(view, topic, kind, locale)
        except Exception:
            # A broken template must not hold back a warning: send the publisher's own words, unadorned.
            log.exception("rendering failed; sending the plain text", extra={"alert_id": alert_id, "channel": kind})
            message = plain_message(view, topic, locale, self.renderer.disclosure_url(alert_id), kind)
        if proxy:
            message = self._assist.decorate(message, kind, proxy, lists[(alert_id, proxy)],
                                            issued_at(alert.created_at), channel.max_chars)
        size = channel.max_batch
        limiter = self._limiters[kind]
        per_request = getattr(channel, "one_request_per_batch", False)
        if not per_request:
            if limiter.rate is not None:
                # A chunk's recipients go out together once its tokens are paid: a chunk larger than the bucket
                # would burst past the provider's rate, so per-recipient channels are chunked to the bucket's size.
                size = max(1, min(size, int(limiter.capacity)))
            if getattr(channel, "requests_per_recipient", False) and not life_safety:
                # Routine requests in flight stay within their share of the connection pool, so that a red
                # warning finds a free connection instead of queueing behind a routine fan-out's requests.
                size = min(size, self._routine_chunk[kind])
        chunks = [batch[i:i + size] for i in range(0, len(batch), size)]
        links = self._links(kind, alert)  # once per message, like the message: its tokens share all but the subscriber
        # A batch API (SMS) makes a provider request a chunk, a token each; others (webhook, email) a request, and a
        # token, a recipient. A group's few batch requests are paid for together when the bucket's burst allows
        # them at once: one transaction of the shared bucket instead of one a request (Tencent: 3 a claim of 600).
        paid = per_request and limiter.fits(len(chunks), life_safety=life_safety)
        if paid:
            await limiter.acquire(float(len(chunks)), life_safety=life_safety)
        parts = await asyncio.gather(*(
            self._send_chunk(channel, message, links, alert, chunk, life_safety=life_safety,
                             tokens=0.0 if paid else (1.0 if per_request else float(len(chunk)))) for chunk in chunks))
        return {k: v for part in parts for k, v in part.items()}

    async def _send_chunk(self, channel: Channel, message: Message, links: MessageLinks | None, alert: AlertRow,
                          chunk: list[ClaimedDelivery], *, life_safety: bool,
                          tokens: float) -> dict[str, DeliveryUpdate]:
        """One chunk sent, after taking its `tokens` of the channel's rate (none: its group paid for it). A routine
        chunk does its own work — its recipients, its results — only while no life-safety work holds the window, and
        a slice at a time (`LifeSafetyWindow.routine_map`): done whole, each was one step of the event loop without a
        pause (1,000 numbers: 2-20 ms under a fan-out with reports, measured), which a red warning's every step — its
        publish's very request — would otherwise wait behind."""
        if tokens:
            await self._limiters[channel.kind].acquire(tokens, life_safety=life_safety)
        async with (self._urgent_slots if life_safety else self._send_slots)[channel.kind]:
            # Right before sending (chunks queued for a slot wait too); a routine chunk's recipients a slice a turn.
            recipients = await self.window.routine_map(functools.partial(recipient_of, links=links), chunk,
                                                       life_safety=life_safety)
            started = time.perf_counter()
            try:
                results = {r.delivery_id: r for r in await channel.send(message, recipients)}
            except TransientDeliveryError as exc:
                results = {d.id: DeliveryResult(d.id, Outcome.TRANSIENT, error=str(exc), retry_after=exc.retry_after)
                           for d in chunk}
            except PermanentDeliveryError as exc:
                results = {d.id: DeliveryResult(d.id, Outcome.PERMANENT, error=str(exc)) for d in chunk}
            except Exception as exc:  # an adapter bug must not lose the batch: retry it like a transient error
                log.exception("channel %s raised while sending", channel.kind)
                results = {d.id: DeliveryResult(d.id, Outcome.TRANSIENT, error=f"adapter error: {type(exc).__name__}")
                           for d in chunk}
            if self.metrics is not None:
                self.metrics.observe_send(channel.kind, time.perf_counter() - started)
        now = self.clock()  # when the send ended, whatever waits below
        missing = DeliveryResult("", Outcome.TRANSIENT, error="adapter returned no result")

        def written(d: ClaimedDelivery) -> DeliveryUpdate:
            return self._written(d, results.get(d.id, missing), alert, now)

        # A red warning published while a routine chunk was in flight goes first, for a while; then a slice a turn.
        updates = await self.window.routine_map(written, chunk, life_safety=life_safety, at_most=UNDER_WAY_WAIT)
        return {d.id: update for d, update in zip(chunk, updates, strict=True)}

    def _links(self, kind: str, alert: AlertRow) -> MessageLinks | None:
        """The signed manage/unsubscribe links of the alert's message on the channels that carry them (see
        notifier.links); the tokens count from the alert's time, so every retry sends the same links."""
        if not (self._link_secret and self._public_url and kind in LINK_CHANNELS):
            return None
        return MessageLinks(self._public_url, self._link_secret, alert.topic,
                            issued=datetime.fromtimestamp(alert.created_at, UTC))

    def _written(self, d: ClaimedDelivery, r: DeliveryResult, alert: AlertRow, now: float) -> DeliveryUpdate:
        if r.outcome is Outcome.DELIVERED:
            return DeliveryUpdate(d.id, d.alert_id, DeliveryStatus.DELIVERED, now,
                                  provider_message_id=r.provider_message_id)
        if r.outcome is Outcome.ACCEPTED:  # its address: to match a report that overtakes this record
            return DeliveryUpdate(d.id, d.alert_id, DeliveryStatus.SENT, now, provider_message_id=r.provider_message_id,
                                  address=d.address)
        if r.outcome is Outcome.PERMANENT:
            return DeliveryUpdate(d.id, d.alert_id, FAILED, now, error=r.error, disable_contact=r.disable_contact,
                                  fall_back=True)
        decision = self.retry.decide(d.attempts + 1, r.retry_after, now, alert.released_at(), alert.expires_at)
        if not decision.retry:
            return DeliveryUpdate(d.id, d.alert_id, FAILED, now, error=f"{r.error}; {decision.reason}", fall_back=True)
        return DeliveryUpdate(d.id, d.alert_id, DeliveryStatus.QUEUED, now, next_attempt_at=now + decision.delay,
                              error=r.error)


def recipient_of(d: ClaimedDelivery, links: MessageLinks | None) -> Recipient:
    """What a channel is handed for one claimed delivery: its contact, and the subscriber's own links when the
    message carries them."""
    manage, unsubscribe = links.of(d.subscriber_id) if links else (None, None)
    return Recipient(delivery_id=d.id, subscriber_id=d.subscriber_id, address=d.address or "", secret=d.secret,
                     manage_url=manage, unsubscribe_url=unsubscribe)


def _life_safety(alert: AlertRow) -> bool:
    return delivery_priority(alert) is Priority.LIFE_SAFETY


def plain_message(alert: Alert, topic: Topic, locale: str, url: str, kind: str = "") -> Message:
    """The alert in its publisher's words, used only when the channel's template cannot be rendered. For a voice
    call, written for the ear (`channels.voice.speech`): no link, symbols silenced, numbers and terms in words."""
    parts = (f"【{topic.department}】{alert.headline}", alert.body, alert.instruction, url)
    fields = {"headline": alert.headline, "department": topic.department, "detail": alert.body}
    text = " ".join(part for part in parts if part)
    if kind == "voice":
        said = (topic.department, alert.headline, alert.body, alert.instruction)
        text = spoken("。".join(part.strip().rstrip("。") for part in said if part.strip()) + "。", locale)
        fields = {name: spoken(value, locale) for name, value in fields.items()}
    payload = {"id": alert.id, "topic": alert.topic, "msg_type": alert.msg_type.value, "headline": alert.headline,
               "body": alert.body, "instruction": alert.instruction, "severity": alert.severity.value, "url": url}
    return Message(alert_id=alert.id, topic=alert.topic, msg_type=alert.msg_type.value,
                   severity=alert.severity.value, urgency=alert.urgency.value,
                   level=alert.level.value if alert.level else None, locale=locale, headline=alert.headline,
                   text=text, subject=alert.headline, html=None, url=url, fields=fields,
                   payload=payload, sent_at=alert.created_at.timestamp())
