"""Terminal output for long work: a live progress display while an alert goes out (accepted, reached, fallbacks
and why deliveries fail, as it happens), and the coverage tables with the causes of failure in words."""

from __future__ import annotations

import asyncio
import sys

from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, Progress, TaskID, TextColumn, TimeElapsedColumn
from rich.table import Table

from notifier.causes import UNREACHABLE, CauseCount, alert_causes
from notifier.coverage import alert_coverage
from notifier.models import Coverage, Policy
from notifier.service import Service
from subscriptions.models import PROXY_CHANNEL

# Piped into a file or another program, rich assumes 80 columns and cuts headers ("awaiti…"): give it room.
PIPE_WIDTH = 200
console = Console() if sys.stdout.isatty() else Console(width=PIPE_WIDTH)

# The words of the display, in one place.
ACCEPTED = "已接收 accepted"
REACHED = "已送达 reached"
FALLBACKS = "转下一渠道 fallbacks"
FAILED = "投递失败 failed"
CAUSES_EVERY = 1.0  # seconds between two looks at the failure causes while an alert goes out
TOP_CAUSES = 3
COVERAGE_LINE = ("[bold]覆盖情况 Coverage[/bold] alert {id}: targeted {targeted}, reached {reached} ({rate}), "
                 "accepted {accepted} ({accepted_rate})")
NOT_REACHED = "未送达原因 Not reached, by cause — {causes}"
TIME_TO_REACH = ("送达用时 Time to reach: p50 {p50}, p90 {p90}, p99 {p99}  "
                 "(— = that share of the targeted has not been reached yet)")
BY_CHANNEL, BY_REGION, WHY_FAILED = "按渠道 By channel", "按区县 By region", "失败原因 Why deliveries failed"
CHANNEL_COLUMNS = ("channel", "attempted", "sent", "delivered", "failed", "pending", "awaiting receipt",
                   "reach rate")
REGION_COLUMNS = ("region", "targeted", "reached", "coverage")
CAUSE_COLUMNS = ("channel", "deliveries", "原因", "cause", "raw code 原始错误码")


def _pct(value: float | None) -> str:
    return "—" if value is None else f"{value:.1%}"


def _secs(value: float | None) -> str:
    return "—" if value is None else f"{value:.1f} s"


def used_deliveries(coverage: Coverage) -> int:
    """Deliveries that are not `skipped` (a fallback never needed): each is delivered, failed, pending or
    awaiting its receipt."""
    return sum(c.delivered + c.failed + c.pending + c.awaiting_receipt for c in coverage.by_channel.values())


def fallbacks(coverage: Coverage) -> int:
    """Deliveries activated beyond each subscriber's first channel (policy fallback): each subscriber with a
    contact had exactly one first delivery."""
    return max(0, used_deliveries(coverage) - (coverage.targeted - coverage.unreachable.get("no_contact", 0)))


def _short(causes: list[CauseCount]) -> str:
    return " · ".join(f"{c.channel} {c.cause.zh.split('，')[0]} {c.count}" for c in causes[:TOP_CAUSES])


class _Display:
    """The live bars: accepted and reached of the targeted; fallbacks and failures with their main causes."""

    def __init__(self, progress: Progress, targeted: int, policy: Policy) -> None:
        total = targeted or 1
        self.progress = progress
        self.accepted = progress.add_task(ACCEPTED, total=total, note="")
        self.reached = progress.add_task(REACHED, total=total, note="")
        self.fallbacks: TaskID | None = (progress.add_task(FALLBACKS, total=total, note="")
                                         if policy is Policy.FALLBACK else None)
        self.failed = progress.add_task(FAILED, total=1, note="")  # of the deliveries used so far

    def show(self, coverage: Coverage, causes: list[CauseCount]) -> None:
        self.progress.update(self.accepted, completed=coverage.accepted)
        self.progress.update(self.reached, completed=coverage.reached)
        if self.fallbacks is not None:
            self.progress.update(self.fallbacks, completed=fallbacks(coverage))
        failed = sum(c.failed for c in coverage.by_channel.values())
        self.progress.update(self.failed, completed=failed, total=max(1, used_deliveries(coverage)),
                             note=_short(causes))


async def watch_alert(service: Service, alert_id: str, *, timeout: float = 300.0, drive: bool = True,
                      receipt_wait: float = 0.0) -> Coverage:
    """Show the alert going out; returns once nothing is pending and receipts have had `receipt_wait` seconds to
    arrive (accepted SMS and WeChat messages are confirmed by receipt).

    With `drive`, this process delivers (no separate worker needed); otherwise it only watches."""
    coverage = await alert_coverage(service.store, alert_id)
    alert = await service.store.get_alert(alert_id)
    policy = Policy(alert.policy) if alert is not None else Policy.ALL
    columns = (TextColumn("[bold]{task.description}"), BarColumn(), TextColumn("{task.completed}/{task.total}"),
               TimeElapsedColumn(), TextColumn("{task.fields[note]}", markup=False))
    with Progress(*columns, console=console, transient=False) as progress:
        display = _Display(progress, coverage.targeted, policy)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        quiet_since: float | None = None
        causes: list[CauseCount] = []
        looked = -CAUSES_EVERY
        while loop.time() < deadline:
            if drive:
                await service.dispatcher.drain(timeout=1.0)
            coverage = await alert_coverage(service.store, alert_id)
            if loop.time() - looked >= CAUSES_EVERY:
                causes, looked = await alert_causes(service.store, alert_id), loop.time()
            display.show(coverage, causes)
            pending = sum(c.pending for c in coverage.by_channel.values())
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


def _table(title: str, columns: tuple[str, ...], text: tuple[str, ...]) -> Table:
    """Columns named in `text` read left-aligned, the figures right-aligned."""
    table = Table(title=title)
    for column in columns:
        # A header is never cut: its column is at least as wide as its longest word.
        table.add_column(column, justify="left" if column in text else "right",
                         min_width=max(len(word) for word in column.split()))
    return table


def print_coverage(coverage: Coverage, region_names: dict[str, str] | None = None,
                   causes: list[CauseCount] | None = None) -> None:
    """The coverage object as tables: by channel, by region, the causes of the unreached and of failures."""
    names = region_names or {}
    console.print(COVERAGE_LINE.format(id=coverage.alert_id, targeted=coverage.targeted, reached=coverage.reached,
                                       rate=_pct(coverage.coverage_rate), accepted=coverage.accepted,
                                       accepted_rate=_pct(coverage.accepted_rate)))
    channels = _table(BY_CHANNEL, CHANNEL_COLUMNS, ("channel",))
    for kind, c in coverage.by_channel.items():
        channels.add_row(kind, str(c.attempted), str(c.sent), str(c.delivered), str(c.failed), str(c.pending),
                         str(c.awaiting_receipt), _pct(c.reach_rate))
    console.print(channels)
    regions = _table(BY_REGION, REGION_COLUMNS, ("region",))
    for code, cell in coverage.by_region.items():
        label = escape(f"{names.get(code, '')} {code}".strip())
        regions.add_row(label, str(cell.targeted if cell.targeted is not None else "<k"),
                        str(cell.reached if cell.reached is not None else "<k"), _pct(cell.coverage_rate))
    console.print(regions)
    print_causes(coverage, causes or [])
    t = coverage.time_to_reach
    console.print(TIME_TO_REACH.format(p50=_secs(t.p50), p90=_secs(t.p90), p99=_secs(t.p99)))


def print_causes(coverage: Coverage, causes: list[CauseCount]) -> None:
    """Why targeted people were not reached, and why deliveries failed, in words with the raw code beside."""
    if coverage.unreachable:
        words = ", ".join(f"{' '.join(UNREACHABLE.get(cause, (cause, '')))}: {n}".replace("  ", " ")
                          for cause, n in sorted(coverage.unreachable.items()))
        console.print(NOT_REACHED.format(causes=escape(words)))
    if not causes:
        return
    table = _table(WHY_FAILED, CAUSE_COLUMNS, ("channel", *CAUSE_COLUMNS[2:]))
    for c in causes:
        # Cause words and raw codes hold brackets ([channels.sms]) that are text, not rich markup.
        table.add_row(c.channel, str(c.count), escape(c.cause.zh), escape(c.cause.en), escape(c.cause.raw or "—"))
    console.print(table)
