"""Terminal output of `notifier import`: a progress bar while the file is validated and stored, and the summary
with the rejected rows (contacts in it are masked already: the report never holds one in clear)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from rich.console import Console
from rich.progress import BarColumn, Progress, TaskID, TaskProgressColumn, TextColumn, TimeElapsedColumn
from rich.table import Table

from notifier.importing import ImportOutcome, ImportProgress, ImportReport, ProgressCallback

SHOWN_PROBLEMS = 50  # the rest are in the --report file


class ImportDisplay:
    """A rich progress bar over the file's bytes, with rows read / accepted / rejected, then rows stored."""

    def __init__(self, progress: Progress) -> None:
        self._progress = progress
        self._task: TaskID | None = None
        self._storing: TaskID | None = None

    def __call__(self, counts: ImportProgress) -> None:
        if self._task is None:
            self._task = self._progress.add_task("validating 校验", total=counts.bytes_total, rows="")
        rows = f"{counts.rows} read, {counts.accepted} accepted, {counts.rejected} rejected"
        if counts.phase == "validating":
            self._progress.update(self._task, completed=counts.bytes_read, rows=rows)
            return
        self._progress.update(self._task, completed=counts.bytes_total, rows=rows)
        if self._storing is None:
            self._storing = self._progress.add_task("storing 入库", total=counts.accepted, rows="")
        self._progress.update(self._storing, completed=counts.stored, rows=f"{counts.stored} rows")


@contextmanager
def import_display(console: Console) -> Iterator[ProgressCallback]:
    columns = (TextColumn("[bold]{task.description}"), BarColumn(), TaskProgressColumn(),
               TextColumn("{task.fields[rows]}"), TimeElapsedColumn())
    with Progress(*columns, console=console, transient=False) as progress:
        yield ImportDisplay(progress)


_VERDICT = {
    ImportOutcome.IMPORTED: "every row stored 全部导入",
    ImportOutcome.PARTIAL: "valid rows stored, rejected rows left out 已导入有效行",
    ImportOutcome.REJECTED: "nothing stored 未导入: fix the rows below, or import the valid ones with --accept-valid",
}


def write_report(path: Path, report: ImportReport) -> None:
    """The whole report as JSON, readable by its owner only (it may hold generated webhook secrets)."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with open(fd, "w", encoding="utf-8") as out:
        out.write(report.model_dump_json(indent=2))


def print_import_summary(console: Console, report: ImportReport, *, secrets_in_file: bool) -> None:
    """The counts, the verdict, the first rejected rows, and generated webhook secrets unless a report file
    holds them (shown this once, like a new API key)."""
    console.print(f"[bold]导入结果 Import[/bold] {report.source} ({report.format}, {report.encoding}): "
                  f"{report.rows} rows read, {report.accepted} accepted, {report.rejected} rejected, "
                  f"{report.stored} stored as {report.status.value}", soft_wrap=True)
    console.print(_VERDICT[report.outcome], soft_wrap=True)
    if report.problems:
        table = Table(title="被拒绝的行 Rejected rows")
        for column in ("row", "line", "field", "reason"):
            table.add_column(column, justify="right" if column in ("row", "line") else "left")
        for problem in report.problems[:SHOWN_PROBLEMS]:
            table.add_row(str(problem.row), str(problem.line), problem.field or "—", problem.message)
        console.print(table)
        hidden = len(report.problems) - SHOWN_PROBLEMS
        if hidden > 0 or report.problems_truncated:
            console.print(f"… {max(hidden, 0)} more problems listed in the report"
                          + (" (the list stops there; every rejected row is counted)"
                             if report.problems_truncated else ""))
    if report.webhook_secrets and secrets_in_file:
        console.print(f"{len(report.webhook_secrets)} webhook secrets were generated: they are in the report file")
    elif report.webhook_secrets:
        console.print("生成的 webhook 密钥 Generated webhook secrets (shown only now):")
        for secret in report.webhook_secrets:
            console.print(f"row {secret.row}  {secret.subscriber_id}  {secret.webhook_secret}", soft_wrap=True)
