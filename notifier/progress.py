"""Terminal output for long work: a live progress bar while an alert goes out, and the coverage table."""

from __future__ import annotations

import asyncio

from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from notifier.coverage import alert_coverage
from notifier.models import Coverage
from notifier.service import Service

console = Console()


def _pct(value: float | None) -> str:
    return "—" if value is None else f"{value:.1%}"


async def watch_alert(service: Service, alert_id: str, *, timeout: float = 300.0, drive: bool = True,
                      receipt_wait: float = 0.0) -> Coverage:
    """Show targeted / accepted / reached while the alert goes out; returns once nothing is pending and receipts
    have had `receipt_wait` seconds to arrive (accepted SMS and WeChat messages are confirmed by receipt).

    With `drive`, this process delivers (no separate worker needed); otherwise it only watches."""
    coverage = await alert_coverage(service.store, alert_id)
    with Progress(TextColumn("[bold]{task.description}"), BarColumn(), TextColumn("{task.completed}/{task.total}"),
                  TimeElapsedColumn(), console=console, transient=False) as progress:
        accepted = progress.add_task("已接收 accepted", total=coverage.targeted or 1)
        reached = progress.add_task("已送达 reached ", total=coverage.targeted or 1)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        quiet_since: float | None = None
        while loop.time() < deadline:
            if drive:
                await service.dispatcher.drain(timeout=1.0)
            coverage = await alert_coverage(service.store, alert_id)
            progress.update(accepted, completed=coverage.accepted)
            progress.update(reached, completed=coverage.reached)
            pending = sum(c.pending for c in coverage.by_channel.values())
            awaiting = sum(c.awaiting_receipt for c in coverage.by_channel.values())
            if pending == 0:
                quiet_since = quiet_since if quiet_since is not None else loop.time()
                if awaiting == 0 or loop.time() - quiet_since >= receipt_wait:
                    break
            else:
                quiet_since = None
            await asyncio.sleep(0.2)
    return coverage


def _secs(value: float | None) -> str:
    return "—" if value is None else f"{value:.1f} s"


def print_coverage(coverage: Coverage, region_names: dict[str, str] | None = None) -> None:
    names = region_names or {}
    console.print(f"[bold]覆盖情况 Coverage[/bold] alert {coverage.alert_id}: targeted {coverage.targeted}, "
                  f"reached {coverage.reached} ({_pct(coverage.coverage_rate)}), accepted {coverage.accepted} "
                  f"({_pct(coverage.accepted_rate)})")
    channels = Table(title="按渠道 By channel")
    for column in ("channel", "attempted", "sent", "delivered", "failed", "pending", "awaiting receipt",
                   "reach rate"):
        channels.add_column(column, justify="left" if column == "channel" else "right")
    for kind, c in coverage.by_channel.items():
        channels.add_row(kind, str(c.attempted), str(c.sent), str(c.delivered), str(c.failed), str(c.pending),
                         str(c.awaiting_receipt), _pct(c.reach_rate))
    console.print(channels)
    regions = Table(title="按区县 By region")
    for column in ("region", "targeted", "reached", "coverage"):
        regions.add_column(column, justify="left" if column == "region" else "right")
    for code, cell in coverage.by_region.items():
        label = f"{names.get(code, '')} {code}".strip()
        regions.add_row(label, str(cell.targeted if cell.targeted is not None else "<k"),
                        str(cell.reached if cell.reached is not None else "<k"), _pct(cell.coverage_rate))
    console.print(regions)
    if coverage.unreachable:
        causes = ", ".join(f"{cause}: {n}" for cause, n in sorted(coverage.unreachable.items()))
        console.print(f"未送达原因 Not reached, by cause — {causes}")
    t = coverage.time_to_reach
    console.print(f"送达用时 Time to reach: p50 {_secs(t.p50)}, "
                  f"p90 {_secs(t.p90)}, p99 {_secs(t.p99)}")
