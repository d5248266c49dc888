"""Terminal output for long work: a live progress display while an alert goes out (accepted, reached, fallbacks
and why deliveries fail, as it happens), and the coverage tables with the causes of failure in words."""

from __future__ import annotations

import asyncio
import re
import sys
from typing import TYPE_CHECKING

from rich.cells import cell_len
from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, Progress, TaskID, TextColumn, TimeElapsedColumn
from rich.table import Table

from notifier.causes import CauseCount, alert_causes
from notifier.coverage import alert_coverage
from notifier.i18n import N_, NP_, Message, Said, Words
from notifier.models import Coverage, Policy
from notifier.terms import CAUSE as UNREACHED
from subscriptions.models import PROXY_CHANNEL

if TYPE_CHECKING:  # the commands that only show a coverage do not start the service
    from notifier.service import Service

# Piped into a file or another program, rich assumes 80 columns and cuts headers ("awaiti…"): give it room.
PIPE_WIDTH = 200
console = Console() if sys.stdout.isatty() else Console(width=PIPE_WIDTH)

# The words of the display: msgids of the one catalogue, most of them the dashboard's own.
ACCEPTED = NP_("people", "Accepted")
REACHED = N_("Reached")
FALLBACKS = N_("Fallbacks")
FAILED = N_("Failed deliveries")
COVERAGE = NP_("heading", "Coverage")
COVERAGE_LINE = N_("alert %(id)s: targeted %(targeted)s, reached %(reached)s (%(rate)s), accepted %(accepted)s "
                   "(%(accepted_rate)s)")
NOT_REACHED = N_("Why some were not reached")
TIME_TO_REACH = N_("Time to reach")
PERCENTILES = N_("p50 %(p50)s, p90 %(p90)s, p99 %(p99)s (— = that share of the targeted has not been reached yet)")
SECONDS = N_("%(seconds).1f s")
BY_CHANNEL, BY_REGION, WHY_FAILED = N_("By channel"), N_("By district"), N_("Why deliveries failed")
CHANNEL_COLUMNS: tuple[Message, ...] = (N_("Channel"), N_("Attempted"), NP_("deliveries", "Accepted"),
                                        N_("Delivered"), N_("Failed"), N_("Pending"), N_("Awaiting receipt"),
                                        N_("Reach rate"))
REGION_COLUMNS: tuple[Message, ...] = (N_("District"), N_("Targeted"), N_("Reached"), N_("Coverage"))
CAUSE, DELIVERIES, RAW_CODE = N_("Cause"), NP_("column", "Deliveries"), N_("Raw code")
CAUSES_EVERY = 1.0  # seconds between two looks at the failure causes while an alert goes out
TOP_CAUSES = 3
_SHORT = re.compile(r"[，,（(：:;；]")  # where a cause's words can be cut for the live display


def _pct(value: float | None) -> str:
    return "—" if value is None else f"{value:.1%}"


def _secs(words: Words, value: float | None) -> str:
    return "—" if value is None else words(SECONDS, seconds=value)


def used_deliveries(coverage: Coverage) -> int:
    """Deliveries that are not `skipped` (a fallback never needed): each is delivered, failed, pending or
    awaiting its receipt."""
    return sum(c.delivered + c.failed + c.pending + c.awaiting_receipt for c in coverage.by_channel.values())


def fallbacks(coverage: Coverage, to_come: int = 0) -> int:
    """Deliveries activated beyond each subscriber's first channel (policy fallback): each subscriber with a
    contact had exactly one first delivery — but the `to_come` whose rows a large publish is still adding
    (`Store.people_to_come`), who have none yet."""
    first = (coverage.targeted or 0) - coverage.unreachable.get("no_contact", 0) - to_come
    return max(0, used_deliveries(coverage) - first)


def _short(words: Words, causes: list[CauseCount]) -> str:
    return " · ".join(f"{c.channel} {_SHORT.split(c.cause.words(words.lang))[0].strip()} {c.count}"
                      for c in causes[:TOP_CAUSES])


class _Display:
    """The live bars: accepted and reached of the targeted; fallbacks and failures with their main causes."""

    def __init__(self, progress: Progress, words: Words, targeted: int, policy: Policy) -> None:
        total = targeted or 1
        self.progress, self.words = progress, words
        self.accepted = progress.add_task(escape(words.beside(ACCEPTED)), total=total, note="")
        self.reached = progress.add_task(escape(words.beside(REACHED)), total=total, note="")
        self.fallbacks: TaskID | None = (progress.add_task(escape(words.beside(FALLBACKS)), total=total, note="")
                                         if policy is Policy.FALLBACK else None)
        # Failures count among the deliveries used so far.
        self.failed = progress.add_task(escape(words.beside(FAILED)), total=1, note="")

    def show(self, coverage: Coverage, causes: list[CauseCount], to_come: int = 0) -> None:
        self.progress.update(self.accepted, completed=coverage.accepted)
        self.progress.update(self.reached, completed=coverage.reached)
        if self.fallbacks is not None:
            self.progress.update(self.fallbacks, completed=fallbacks(coverage, to_come))
        failed = sum(c.failed for c in coverage.by_channel.values())
        self.progress.update(self.failed, completed=failed, total=max(1, used_deliveries(coverage)),
                             note=_short(self.words, causes))


async def watch_alert(service: Service, alert_id: str, words: Words, *, timeout: float = 300.0,
                      drive: bool = True, receipt_wait: float = 0.0) -> Coverage:
    """Show the alert going out; returns once nothing is pending and receipts have had `receipt_wait` seconds to
    arrive (accepted SMS and WeChat messages are confirmed by receipt).

    With `drive`, this process delivers (no separate worker needed); otherwise it only watches."""
    coverage = await alert_coverage(service.store, alert_id)
    alert = await service.store.get_alert(alert_id)
    policy = Policy(alert.policy) if alert is not None else Policy.ALL
    columns = (TextColumn("[bold]{task.description}"), BarColumn(), TextColumn("{task.completed}/{task.total}"),
               TimeElapsedColumn(), TextColumn("{task.fields[note]}", markup=False))
    with Progress(*columns, console=console, transient=False) as progress:
        display = _Display(progress, words, coverage.targeted or 0, policy)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        quiet_since: float | None = None
        causes: list[CauseCount] = []
        looked = -CAUSES_EVERY
        while loop.time() < deadline:
            if drive:
                await service.dispatcher.drain(timeout=1.0)
            # Read before the coverage: rows added in between are then counted twice, never not at all.
            to_come = (await service.store.people_to_come([alert_id])).get(alert_id, 0)
            coverage = await alert_coverage(service.store, alert_id)
            if loop.time() - looked >= CAUSES_EVERY:
                causes, looked = await alert_causes(service.store, alert_id), loop.time()
            display.show(coverage, causes, to_come)
            pending = sum(c.pending for c in coverage.by_channel.values()) + to_come
            # A proxy's confirmation comes when a person has been told, not from a provider: not waited for.
            awaiting = sum(c.awaiting_receipt for kind, c in coverage.by_channel.items() if kind != PROXY_CHANNEL)
            if pending == 0:
                quiet_since = quiet_since if quiet_since is not None else loop.time()
                if awaiting == 0 or loop.time() - quiet_since >= receipt_wait:
                    break
            else:
                quiet_since = None
            await asyncio.sleep(0.2)
        display.show(coverage, await alert_causes(service.store, alert_id))
    return coverage


def _table(words: Words, title: Message, headers: list[str], figures: range) -> Table:
    """A table with its title beside its English (as the command line always showed it); the columns at
    `figures` are right-aligned, the others read left-aligned."""
    table = Table(title=escape(words.beside(title)))
    for i, header in enumerate(headers):
        # A header is never cut: its column is at least as wide as its longest word.
        table.add_column(escape(header), justify="right" if i in figures else "left",
                         min_width=max(cell_len(word) for word in header.split()))
    return table


def print_coverage(coverage: Coverage, words: Words, region_names: dict[str, str] | None = None,
                   causes: list[CauseCount] | None = None) -> None:
    """The coverage object as tables: by channel, by region, the causes of the unreached and of failures
    (`region_names`: the catalogue's names of the districts, in the reader's language)."""
    names = region_names or {}
    line = words(COVERAGE_LINE, id=coverage.alert_id, targeted=coverage.targeted, reached=coverage.reached,
                 rate=_pct(coverage.coverage_rate), accepted=coverage.accepted,
                 accepted_rate=_pct(coverage.accepted_rate))
    console.print(f"[bold]{escape(words.beside(COVERAGE))}[/bold] {escape(line)}")
    channels = _table(words, BY_CHANNEL, [words(c) for c in CHANNEL_COLUMNS], range(1, len(CHANNEL_COLUMNS)))
    for kind, c in coverage.by_channel.items():
        channels.add_row(kind, str(c.attempted), str(c.sent), str(c.delivered), str(c.failed), str(c.pending),
                         str(c.awaiting_receipt), _pct(c.reach_rate))
    console.print(channels)
    regions = _table(words, BY_REGION, [words(c) for c in REGION_COLUMNS], range(1, len(REGION_COLUMNS)))
    for code, cell in coverage.by_region.items():
        label = escape(f"{names.get(code, '')} {code}".strip())
        regions.add_row(label, str(cell.targeted if cell.targeted is not None else "<k"),
                        str(cell.reached if cell.reached is not None else "<k"), _pct(cell.coverage_rate))
    console.print(regions)
    print_causes(coverage, words, causes or [])
    t = coverage.time_to_reach
    spans = words(PERCENTILES, p50=_secs(words, t.p50), p90=_secs(words, t.p90), p99=_secs(words, t.p99))
    console.print(escape(f"{words.beside(TIME_TO_REACH)}: {spans}"))


def print_causes(coverage: Coverage, words: Words, causes: list[CauseCount]) -> None:
    """Why targeted people were not reached, and why deliveries failed, in words with the raw code beside (in
    Chinese, the English words too, as the command line always showed them)."""
    if coverage.unreachable:
        said = ", ".join(f"{words.beside(Said.term(UNREACHED[cause])) if cause in UNREACHED else cause}: {n}"
                         for cause, n in sorted(coverage.unreachable.items()))
        console.print(escape(f"{words.beside(NOT_REACHED)} — {said}"))
    if not causes:
        return
    english = words.lang != "en"  # in Chinese, the English words of each cause in a column of their own
    headers = [words(CHANNEL_COLUMNS[0]), words(DELIVERIES), words(CAUSE),
               *([Said(CAUSE).in_lang("en")] if english else []), words(RAW_CODE)]
    table = _table(words, WHY_FAILED, headers, range(1, 2))
    for c in causes:
        # Cause words and raw codes hold brackets ([channels.sms]) that are text, not rich markup.
        beside = [escape(c.cause.en)] if english else []
        table.add_row(c.channel, str(c.count), escape(c.cause.words(words.lang)), *beside,
                      escape(c.cause.raw or "—"))
    console.print(table)
