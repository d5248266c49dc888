"""Bulk import of assisted-person lists by a sub-district office (`notifier import FILE --assisted`,
`POST /v1/subscribers/import?assisted=true`): people with no contact of their own, each on the list of the proxy
(grid worker, caregiver) who is to tell them.

CSV (UTF-8 with or without BOM, or GBK; header on the first line, columns in any order, English or Chinese):

- `proxy` (网格员, 网格员手机号, 照护人, 转告人): the proxy's subscriber id, or its mobile number (its SMS or voice
  contact) — required; the proxy must already be stored with the role `proxy`
- `label` (备注, 称呼, 受助人): who this is, in the proxy's words (`3号楼2单元 王奶奶`) — required, one line, ≤ 100
- `region` (区县, 地区, 所在区县, 行政区划代码): code or catalogue name — required
- `groups` (group, 人群, 群体, 人群类别): codes or names, separated by `;`, `|`, `；` or `、`

The rules are those of `notifier import`: every row is checked as `POST /v1/subscribers/{id}/assists` checks a
person, every problem of a row is reported at once, and the import is all or nothing unless `partial`; the report
is the same `ImportReport`. A label given twice for one proxy — in the file, or already on the proxy's list — is a
duplicate (an office that sends its list twice adds nobody twice). Labels never appear in a report; a proxy's
number only masked. The rows are stored in ONE transaction (`Store.import_assisted`). A list is a grid's few
hundred people: files are read whole, up to MAX_BYTES.
"""

from __future__ import annotations

import csv
import io
import re
import uuid
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field

from pydantic import ValidationError

from notifier.errors import FieldError, InvalidInput
from notifier.import_rows import ASSISTED_COLUMNS as COLUMNS
from notifier.import_rows import header_names, split_list
from notifier.importing import MAX_PROBLEMS, ImportOutcome, ImportReport, RowProblem
from notifier.input_rules import CatalogueCodes, field_errors
from notifier.store import Store
from notifier.store.records import AssistedRecord, SubscriberRecord
from notifier.textcoding import decode_detected, encoding_name
from subscriptions.contacts import normalize_mobile
from subscriptions.masking import mask_mobile
from subscriptions.models import PROXY_ROLE, AssistedIn, SubscriberStatus

MAX_BYTES = 5_000_000  # tens of thousands of people: more than any sub-district holds
REQUIRED = ("proxy", "label", "region")
_ALIASES = {alias.lower(): name for name, aliases in COLUMNS.items() for alias in (name, *aliases)}
_HEX_ID = re.compile(r"[0-9a-f]{32}")


@dataclass
class _Row:
    row: int
    line: int
    cells: dict[str, str]
    person: AssistedIn | None = None
    proxy_id: str | None = None
    errors: list[FieldError] = field(default_factory=list)


async def import_assisted(store: Store, raw: bytes, *, label: str, partial: bool) -> ImportReport:
    """Import a CSV list of assisted people; the report says what was stored and why each rejected row was."""
    if len(raw) > MAX_BYTES:
        raise InvalidInput("the list is too large", [FieldError("file", f"at most {MAX_BYTES} bytes")])
    text, codec = decode_detected(raw)
    rows, written = _read(text)
    if not rows:
        raise InvalidInput("the file holds no rows", [FieldError("rows", "at least one row is needed")])
    codes = await CatalogueCodes.load(store)
    for row in rows:
        _check(row, codes)
    await _resolve_proxies(store, rows)
    accepted = [r for r in rows if not r.errors]
    rejected = len(rows) - len(accepted)
    outcome = ImportOutcome.IMPORTED if not rejected else (ImportOutcome.PARTIAL if partial else ImportOutcome.REJECTED)
    stored = 0
    if outcome is not ImportOutcome.REJECTED and accepted:
        stored = await store.import_assisted(_lists(accepted))
    problems = [RowProblem(row=r.row, line=r.line, field=written.get(e.field.split(".")[0], e.field),
                           message=e.message)
                for r in rows for e in r.errors][:MAX_PROBLEMS]
    return ImportReport(
        source=label, format="csv", encoding="utf-8" if encoding_name(codec) == "utf-8" else "gbk", partial=partial,
        status=SubscriberStatus.ACTIVE, outcome=outcome, rows=len(rows), accepted=len(accepted), rejected=rejected,
        stored=stored, problems=problems, problems_truncated=sum(len(r.errors) for r in rows) > MAX_PROBLEMS)


def _read(text: str) -> tuple[list[_Row], dict[str, str]]:
    """The data rows, and each column's name as the header wrote it."""
    reader = csv.reader(io.StringIO(text.removeprefix("\ufeff"), newline=""))
    try:
        header = next(reader, [])
        columns = _header(header)
        rows: list[_Row] = []
        start = reader.line_num + 1
        for cells in reader:
            line, start = start, reader.line_num + 1
            if not any(c.strip() for c in cells):
                continue
            row = _Row(len(rows) + 1, line, dict(zip(columns, (c.strip() for c in cells), strict=False)))
            if len(cells) != len(columns):
                row.errors.append(FieldError("", f"has {len(cells)} cells, the header has {len(columns)}"))
            rows.append(row)
    except csv.Error as exc:
        raise InvalidInput(f"the CSV file is not valid at line {reader.line_num}", [FieldError("file", str(exc))]) \
            from None
    return rows, {name: header[i].strip() for i, name in enumerate(columns)}


def _header(cells: Sequence[str]) -> list[str]:
    names, errors = header_names(cells, _ALIASES)
    errors += [FieldError("header", f"the column {name} is required") for name in REQUIRED if name not in names]
    if errors:
        raise InvalidInput(f"the CSV header is not valid; the columns are {', '.join(COLUMNS)} "
                           "(or their Chinese names)", errors)
    return names


def _check(row: _Row, codes: CatalogueCodes) -> None:
    """The person as `POST …/assists` takes one; every problem at once (an unknown place as unknown)."""
    if row.errors:
        return
    cells = row.cells
    region, region_errors = [""], [FieldError("region", "required: a district's code or name")]
    if cells.get("region"):
        region, region_errors = codes.resolve("region", [cells["region"]], "region")
    groups, group_errors = codes.resolve("group", split_list(cells.get("groups")), "groups")
    row.errors += region_errors + group_errors
    try:
        row.person = AssistedIn(label=cells.get("label", ""), region=region[0], groups=groups)
    except ValidationError as exc:
        named = {e.field for e in row.errors}
        row.errors += [e for e in field_errors(exc) if e.field.split(".")[0] not in named]
    if not cells.get("proxy"):
        row.errors.append(FieldError("proxy", "required: the proxy's id or mobile number"))


async def _resolve_proxies(store: Store, rows: list[_Row]) -> None:
    """Each row's proxy (by id, or by its SMS or voice number), and labels already held or repeated."""
    numbers = {r.cells["proxy"]: _mobile(r.cells["proxy"]) for r in rows if r.cells.get("proxy")}
    held = {**await store.proxies_by_contact("voice", [n for n in numbers.values() if n]),
            **await store.proxies_by_contact("sms", [n for n in numbers.values() if n])}
    records: dict[str, SubscriberRecord | None] = {}
    seen: dict[tuple[str, str], int] = {}
    for row in rows:
        cell = row.cells.get("proxy", "")
        proxy_id = cell.lower() if _HEX_ID.fullmatch(cell.lower()) else held.get(numbers.get(cell) or "")
        if cell and proxy_id is None:
            row.errors.append(FieldError("proxy", f"no proxy has the number {mask_mobile(cell)}"
                                                  if numbers.get(cell) else "not a proxy's id or mobile number"))
            continue
        if proxy_id is None:
            continue
        if proxy_id not in records:
            records[proxy_id] = await store.get_subscriber(proxy_id)
        record = records[proxy_id]
        if record is None or record.role != PROXY_ROLE:
            row.errors.append(FieldError("proxy", "no such proxy (a subscriber with the role proxy)"))
            continue
        row.proxy_id = proxy_id
        if row.person is not None:
            _duplicate(row, record, seen)


def _duplicate(row: _Row, proxy: SubscriberRecord, seen: dict[tuple[str, str], int]) -> None:
    assert row.person is not None  # noqa: S101 - the caller checked
    key = (proxy.id, row.person.label)
    if any(p.label == row.person.label for p in proxy.assists):
        row.errors.append(FieldError("label", "duplicate: the proxy's list already holds this label"))
    elif key in seen:
        row.errors.append(FieldError("label", f"duplicate: row {seen[key]} gives the same label for this proxy"))
    else:
        seen[key] = row.row


def _mobile(cell: str) -> str | None:
    try:
        return normalize_mobile(cell)
    except ValueError:
        return None


def _lists(rows: list[_Row]) -> list[tuple[str, list[AssistedRecord]]]:
    """The accepted people by proxy, in the file's order."""
    by_proxy: dict[str, list[AssistedRecord]] = defaultdict(list)
    for r in rows:
        assert r.person is not None and r.proxy_id is not None  # noqa: S101 - accepted rows have both
        by_proxy[r.proxy_id].append(AssistedRecord(id=uuid.uuid4().hex, label=r.person.label,
                                                   region=r.person.region, groups=r.person.groups))
    return list(by_proxy.items())
