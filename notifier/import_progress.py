"""Terminal output of `notifier import`: a progress bar while the file is validated and stored, and the summary
with the rejected rows (contacts in it are masked already: the report never holds one in clear)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, Progress, TaskID, TaskProgressColumn, TextColumn, TimeElapsedColumn
from rich.table import Table

from notifier.i18n import N_, Words
from notifier.importing import ImportOutcome, ImportProgress, ImportReport, ProgressCallback

SHOWN_PROBLEMS = 50  # the rest are in the --report file

# What the display says: msgids of the one catalogue (notifier.i18n), said in the command line's language.
VALIDATING, STORING = N_("validating"), N_("storing")
ROWS_SO_FAR = N_("%(rows)s read, %(accepted)s accepted, %(rejected)s rejected")
ROWS_STORED = N_("%(stored)s rows")
IMPORT = N_("Import")
SUMMARY = N_("%(source)s (%(format)s, %(encoding)s): %(rows)s rows read, %(accepted)s accepted, %(rejected)s "
             "rejected, %(stored)s stored as %(status)s")
VERDICT = {
    ImportOutcome.IMPORTED: N_("every row stored"),
    ImportOutcome.PARTIAL: N_("valid rows stored, rejected rows left out"),
    ImportOutcome.REJECTED: N_("nothing stored: fix the rows below, or import the valid ones with --accept-valid"),
}
REJECTED_ROWS = N_("Rejected rows")
PROBLEM_COLUMNS = (N_("Row"), N_("Line"), N_("Field"), N_("Reason"))
MORE_PROBLEMS = N_("… %(more)s more problems listed in the report")
LIST_STOPS = N_(" (the list stops there; every rejected row is counted)")
SECRETS_IN_FILE = N_("%(n)s webhook secrets were generated: they are in the report file")
SECRETS_SHOWN = N_("Generated webhook secrets (shown only now):")
SECRET_LINE = N_("row %(row)s  %(subscriber)s  %(secret)s")


class ImportDisplay:
    """A rich progress bar over the file's bytes, with rows read / accepted / rejected, then rows stored."""

    def __init__(self, progress: Progress, words: Words) -> None:
        self._progress = progress
        self._words = words
        self._task: TaskID | None = None
        self._storing: TaskID | None = None

    def __call__(self, counts: ImportProgress) -> None:
        say = self._words
        if self._task is None:
            self._task = self._progress.add_task(escape(say.beside(VALIDATING)), total=counts.bytes_total, rows="")
        rows = say(ROWS_SO_FAR, rows=counts.rows, accepted=counts.accepted, rejected=counts.rejected)
        if counts.phase == "validating":
            self._progress.update(self._task, completed=counts.bytes_read, rows=rows)
            return
        self._progress.update(self._task, completed=counts.bytes_total, rows=rows)
        if self._storing is None:
            self._storing = self._progress.add_task(escape(say.beside(STORING)), total=counts.accepted, rows="")
        self._progress.update(self._storing, completed=counts.stored, rows=say(ROWS_STORED, stored=counts.stored))


@contextmanager
def import_display(console: Console, words: Words) -> Iterator[ProgressCallback]:
    columns = (TextColumn("[bold]{task.description}"), BarColumn(), TaskProgressColumn(),
               TextColumn("{task.fields[rows]}", markup=False), TimeElapsedColumn())
    with Progress(*columns, console=console, transient=False) as progress:
        yield ImportDisplay(progress, words)


def write_report(path: Path, report: ImportReport) -> None:
    """The whole report as JSON, readable by its owner only (it may hold generated webhook secrets)."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with open(fd, "w", encoding="utf-8") as out:
        out.write(report.model_dump_json(indent=2))


def print_import_summary(console: Console, words: Words, report: ImportReport, *, secrets_in_file: bool) -> None:
    """The counts, the verdict, the first rejected rows, and generated webhook secrets unless a report file
    holds them (shown this once, like a new API key). Row problems are the import's own (the API's) words."""
    summary = words(SUMMARY, source=report.source, format=report.format, encoding=report.encoding, rows=report.rows,
                    accepted=report.accepted, rejected=report.rejected, stored=report.stored,
                    status=report.status.value)
    console.print(f"[bold]{escape(words.beside(IMPORT))}[/bold] {escape(summary)}", soft_wrap=True)
    console.print(escape(words.beside(VERDICT[report.outcome])), soft_wrap=True)
    if report.problems:
        _print_problems(console, words, report)
    if report.webhook_secrets and secrets_in_file:
        console.print(escape(words(SECRETS_IN_FILE, n=len(report.webhook_secrets))))
    elif report.webhook_secrets:
        console.print(escape(words.beside(SECRETS_SHOWN)))
        for secret in report.webhook_secrets:
            console.print(escape(words(SECRET_LINE, row=secret.row, subscriber=secret.subscriber_id,
                                       secret=secret.webhook_secret)), soft_wrap=True)


def _print_problems(console: Console, words: Words, report: ImportReport) -> None:
    table = Table(title=escape(words.beside(REJECTED_ROWS)))
    for i, column in enumerate(PROBLEM_COLUMNS):
        table.add_column(escape(words(column)), justify="right" if i < 2 else "left")
    for problem in report.problems[:SHOWN_PROBLEMS]:
        table.add_row(str(problem.row), str(problem.line), escape(problem.field or "—"), escape(problem.message))
    console.print(table)
    hidden = len(report.problems) - SHOWN_PROBLEMS
    if hidden > 0 or report.problems_truncated:
        console.print(escape(words(MORE_PROBLEMS, more=max(hidden, 0))
                             + (words(LIST_STOPS) if report.problems_truncated else "")))
