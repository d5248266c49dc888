"""Bulk import of subscribers from registries bureaus already hold (`notifier import FILE`,
`POST /v1/subscribers/import`): CSV or NDJSON (formats in `notifier.import_rows`), UTF-8 or GBK.

Every row is validated as `POST /v1/subscribers` validates a body (the same models, catalogue checks — region,
groups and topics must exist, a contact for every channel asked for — and the webhook SSRF guard), and it must
subscribe to at least one topic. A person may be listed once: a mobile number, email address or WeChat openid
that an earlier row of the file holds, or that a stored subscriber already holds (disabled contacts too, so an
import never signs up again someone who opted out), rejects the row as a duplicate. Webhook URLs are not
compared: one organisation's endpoint may serve several registrations.

The report names every rejected row (its number, the line of the file, the field, the reason); contacts never
appear in it, except masked in duplicate reasons. By default an import is all or nothing: one rejected row and
nothing is stored. With `partial` (`--accept-valid`, `?partial=true`) the valid rows are stored and the others
reported.

How "nothing half-imported" holds for a file of any size: rows are read and validated a chunk at a time; the
valid ones wait in a private staging database (`notifier.import_staging`), which also finds repeated contacts, so
memory stays bounded. Only when the whole file has been read is the import decided; then every staged row goes to
the store in ONE transaction (`Store.import_subscribers`). If the process dies before COMMIT, SQLite discards the
uncommitted transaction when the database is next opened: nothing of the import is stored.

Imported subscribers are `active` with their contacts verified: the bureau vouches for its registry, as an
administrator does for `POST /v1/subscribers`. With `pending` they wait for verification instead. The consent
source recorded is `import:<label>` (the file name or the bureau's label). A generated webhook secret is shown
once, in the report of the import that stored it.
"""

from __future__ import annotations

import asyncio
import io
import time
import uuid
from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Literal, TextIO

from pydantic import Field

from notifier.audit import CLI, Actor
from notifier.errors import FieldError, InvalidInput
from notifier.import_rows import CsvReader, NdjsonReader, RawRow, RowReader
from notifier.import_staging import StagedRow, Staging
from notifier.input_rules import CatalogueCodes
from notifier.models import Frozen
from notifier.store import Store
from notifier.store.records import SubscriberRecord
from notifier.subscribers import assisted_records, check_subscriber, contacts_alone, severity_rank, webhook_errors
from notifier.textcoding import (
    UnreadableUpload,
    decode_detected,
    detect_file_encoding,
    encoding_name,
    file_head,
    open_text,
)
from subscriptions.contacts import generate_webhook_secret
from subscriptions.masking import mask_contact
from subscriptions.models import AssistedIn, SubscriberIn, SubscriberStatus

CHUNK_ROWS = 10_000  # rows validated between two looks at the store (and two progress updates)
MAX_PROBLEMS = 10_000  # problems listed in a report; `rejected` counts them all
DEDUPED = ("sms", "email", "wechat")  # a person's own contacts; webhooks may be shared by registrations
FORMATS = ("csv", "ndjson")


class ImportOutcome(StrEnum):
    IMPORTED = "imported"  # every row stored
    PARTIAL = "partial"  # the valid rows stored, the others rejected (partial mode)
    REJECTED = "rejected"  # rows rejected, nothing stored (all or nothing)


class RowProblem(Frozen):
    row: int = Field(description="1-based number of the data row (the CSV header is not counted)")
    line: int = Field(description="line of the file where the row starts")
    field: str = Field(description="the CSV column as the header wrote it, or a dotted path into the NDJSON "
                                   "body; empty: the whole row")
    message: str = Field(description="why; a contact appears only masked")


class GeneratedSecret(Frozen):
    row: int
    subscriber_id: str
    webhook_secret: str = Field(description="generated for a webhook given without one; shown only here")


class ImportReport(Frozen):
    """What a bulk import did, row by row."""

    source: str = Field(description="the label recorded as consent source `import:<label>`")
    format: Literal["csv", "ndjson"]
    encoding: Literal["utf-8", "gbk"]
    partial: bool = Field(description="valid rows stored even though others were rejected")
    status: SubscriberStatus = Field(description="status given to the stored subscribers")
    outcome: ImportOutcome
    rows: int = Field(description="data rows read")
    accepted: int = Field(description="rows that passed every check")
    rejected: int
    stored: int = Field(description="subscribers stored: the accepted rows, or 0 when the import was rejected")
    problems: list[RowProblem]
    problems_truncated: bool = Field(description=f"more than {MAX_PROBLEMS} problems: the rest are only counted")
    webhook_secrets: list[GeneratedSecret] = Field(default_factory=list)


@dataclass(frozen=True)
class ImportOptions:
    label: str
    partial: bool = False
    status: SubscriberStatus = SubscriberStatus.ACTIVE
    allow_private_webhooks: bool = False
    chunk_rows: int = CHUNK_ROWS
    actor: Actor = CLI  # who imports, as the audit log records it


@dataclass
class ImportProgress:
    """Counts so far, for a progress display (`bytes_total` is None when unknown)."""

    phase: Literal["validating", "storing"] = "validating"
    rows: int = 0
    accepted: int = 0
    rejected: int = 0
    stored: int = 0
    bytes_read: int = 0
    bytes_total: int | None = None


ProgressCallback = Callable[[ImportProgress], None]


@dataclass
class _Tally:
    progress: ImportProgress
    problems: list[RowProblem] = field(default_factory=list)
    truncated: bool = False
    secrets: list[GeneratedSecret] = field(default_factory=list)

    def reject(self, raw: RawRow, errors: Sequence[FieldError], reader: RowReader) -> None:
        self.progress.rejected += 1
        seen: set[tuple[str, str]] = set()
        for error in errors:
            key = (reader.field(error.field), error.message)
            if key in seen:
                continue  # one channel error per topic would say the same thing several times
            seen.add(key)
            if len(self.problems) >= MAX_PROBLEMS:
                self.truncated = True
                return
            self.problems.append(RowProblem(row=raw.row, line=raw.line, field=key[0], message=key[1]))


# ---------------------------------------------------------------- entry points


def detect_format(name: str, head: str) -> str:
    """`csv` or `ndjson`, from the file name, else from the first character (`{` starts an NDJSON line)."""
    suffix = Path(name).suffix.lower()
    if suffix in (".ndjson", ".jsonl"):
        return "ndjson"
    if suffix in (".csv", ".txt"):
        return "csv"
    return "ndjson" if head.lstrip().startswith("{") else "csv"


async def import_bytes(store: Store, raw: bytes, fmt: str, options: ImportOptions,
                       progress: ProgressCallback | None = None) -> ImportReport:
    """Import a file held in memory (an API upload)."""
    text, codec = decode_detected(raw)
    counts = ImportProgress(bytes_total=len(raw))
    return await _run(store, io.StringIO(text, newline=""), fmt, encoding_name(codec), options, counts, progress)


async def import_file(store: Store, path: Path, fmt: str | None, options: ImportOptions,
                      progress: ProgressCallback | None = None) -> ImportReport:
    """Import a file from disk, streamed: any size, bounded memory."""
    # Reading the whole file to tell its encoding takes a while for a large one: off the event loop.
    codec = await asyncio.to_thread(detect_file_encoding, path)
    fmt = fmt or detect_format(path.name, await asyncio.to_thread(file_head, path, codec))
    size = (await asyncio.to_thread(path.stat)).st_size
    stream, counter = open_text(path, codec)
    with stream:
        counts = ImportProgress(bytes_total=size)

        def counted(p: ImportProgress) -> None:
            p.bytes_read = counter.consumed
            if progress is not None:
                progress(p)

        return await _run(store, stream, fmt, encoding_name(codec), options, counts, counted)


# ---------------------------------------------------------------- the pipeline


async def _run(store: Store, stream: TextIO, fmt: str, encoding: str, options: ImportOptions,
               counts: ImportProgress, progress: ProgressCallback | None) -> ImportReport:
    if fmt not in FORMATS:
        raise InvalidInput("unknown format", [FieldError("format", f"one of {', '.join(FORMATS)}")])
    codes = await CatalogueCodes.load(store)
    try:
        reader: RowReader = CsvReader(stream, codes) if fmt == "csv" else NdjsonReader(stream)
        tally = _Tally(counts)
        staging = Staging()
        try:
            await _validate_all(store, reader, codes, options, staging, tally, progress)
            if counts.rows == 0:
                raise InvalidInput("the file holds no rows", [FieldError("rows", "at least one row is needed")])
            outcome = _decide(counts, options)
            if outcome is not ImportOutcome.REJECTED and counts.accepted:
                counts.phase = "storing"
                details = {"rows": counts.rows, "accepted": counts.accepted, "rejected": counts.rejected,
                           "format": fmt, "status": options.status.value}
                counts.stored = await store.import_subscribers(lambda: _records(staging, options, tally, progress),
                                                               options.actor, details)
        finally:
            staging.close()
    except UnicodeDecodeError:
        raise UnreadableUpload("the file is neither UTF-8 nor GBK text") from None
    return ImportReport(
        source=options.label, format="csv" if fmt == "csv" else "ndjson",
        encoding="utf-8" if encoding == "utf-8" else "gbk", partial=options.partial, status=options.status,
        outcome=outcome, rows=counts.rows, accepted=counts.accepted, rejected=counts.rejected, stored=counts.stored,
        problems=tally.problems, problems_truncated=tally.truncated, webhook_secrets=tally.secrets)


def _decide(counts: ImportProgress, options: ImportOptions) -> ImportOutcome:
    if not counts.rejected:
        return ImportOutcome.IMPORTED
    return ImportOutcome.PARTIAL if options.partial else ImportOutcome.REJECTED


def _chunks(rows: Iterator[RawRow], size: int) -> Iterator[list[RawRow]]:
    chunk: list[RawRow] = []
    for row in rows:
        chunk.append(row)
        if len(chunk) >= size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


async def _validate_all(store: Store, reader: RowReader, codes: CatalogueCodes, options: ImportOptions,
                        staging: Staging, tally: _Tally, progress: ProgressCallback | None) -> None:
    """Every row checked, a chunk at a time; the valid ones staged, the others reported in the file's order."""
    for chunk in _chunks(reader.rows(), options.chunk_rows):
        checked = [(raw, *check_row(raw, codes)) for raw in chunk]
        tally.progress.rows += len(chunk)
        held = {kind: await store.existing_contacts(kind, [a for _, _, contacts, _ in checked
                                                             if (a := contacts.get(kind))])
                for kind in DEDUPED}
        for raw, body, contacts, errors in checked:
            errors = errors + _duplicates(contacts, staging, held)
            if body is not None and body.contacts.webhook and not errors:
                errors += await webhook_errors(body.contacts.webhook, options.allow_private_webhooks)
            if errors or body is None:
                tally.reject(raw, errors, reader)
                continue
            staging.add(_staged(raw.row, body), DEDUPED)
            tally.progress.accepted += 1
        if progress is not None:
            progress(tally.progress)
        await asyncio.sleep(0)  # let the server's other work run between chunks


def check_row(raw: RawRow, codes: CatalogueCodes) -> tuple[SubscriberIn | None, dict[str, str], list[FieldError]]:
    """The row as a subscriber body, its contacts (normalised, for the repeat check: also when another field is
    wrong, so that every problem of a row is reported at once), and every reason it is not a body: the checks of
    `POST /v1/subscribers` (`subscribers.check_subscriber`, against the catalogue in memory) and at least one
    topic."""
    if raw.body is None:
        return None, {}, list(raw.errors)
    body, errors = check_subscriber(raw.body, codes)
    if not raw.body.get("subscriptions") and not any(e.field.startswith("subscriptions") for e in errors):
        errors.append(FieldError("subscriptions", "at least one topic is needed"))
    contacts = body.contacts.addresses() if body is not None else contacts_alone(raw.body)
    return (None if errors else body), contacts, errors


def _duplicates(contacts: dict[str, str], staging: Staging, held: dict[str, set[str]]) -> list[FieldError]:
    errors = []
    for kind, address in contacts.items():
        if kind not in DEDUPED:
            continue
        masked = mask_contact(kind, address)
        if address in held[kind]:
            errors.append(FieldError(f"contacts.{kind}", f"duplicate: {masked} is already held by a subscriber"))
        elif (row := staging.holder(kind, address)) is not None:
            errors.append(FieldError(f"contacts.{kind}", f"duplicate: {masked} is already in row {row}"))
    return errors


def _staged(row: int, body: SubscriberIn) -> StagedRow:
    secrets: dict[str, str] = {}
    generated = False
    if body.contacts.webhook:
        generated = body.contacts.webhook_secret is None
        secrets["webhook"] = body.contacts.webhook_secret or generate_webhook_secret()
    quiet = body.quiet_hours.minutes() if body.quiet_hours else (None, None)
    return StagedRow(row=row, id=uuid.uuid4().hex, region=body.region, locale=body.locale, quiet_start=quiet[0],
                     quiet_end=quiet[1], groups=body.groups, contacts=body.contacts.addresses(),
                     subscriptions=[(s.topic, s.channels, severity_rank(s)) for s in body.subscriptions],
                     secrets=secrets, generated_secret=generated, role=body.role.value,
                     assists=[(p.label, p.region, p.groups) for p in body.assists])


async def _records(staging: Staging, options: ImportOptions, tally: _Tally,
                   progress: ProgressCallback | None) -> AsyncIterator[list[tuple[SubscriberRecord, dict[str, str]]]]:
    """The staged rows as store records, a chunk at a time (consumed inside the store's one transaction, on
    SQLite on the writer's thread; from the first again when that transaction gave way to life-safety work)."""
    tally.progress.stored, tally.secrets = 0, []
    now = time.time()
    consent = f"import:{options.label}"[:100]
    for batch in staging.batches(options.chunk_rows):
        yield [(SubscriberRecord(
            id=s.id, region=s.region, locale=s.locale, quiet_start=s.quiet_start, quiet_end=s.quiet_end,
            status=options.status.value, consent_source=consent, consent_at=now, created_at=now, groups=s.groups,
            contacts=s.contacts, subscriptions=s.subscriptions, role=s.role,
            assists=assisted_records([AssistedIn(label=label, region=region, groups=groups)
                                      for label, region, groups in s.assists])), s.secrets) for s in batch]
        tally.progress.stored += len(batch)  # handed to the store; committed only with the last batch
        tally.secrets += [GeneratedSecret(row=s.row, subscriber_id=s.id, webhook_secret=s.secrets["webhook"])
                          for s in batch if s.generated_secret]
        if progress is not None:
            progress(tally.progress)
