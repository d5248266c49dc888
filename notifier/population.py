"""Population denominators: residents on the city's record per region × group (`PUT /v1/population`), and
the population figures they add to an alert's coverage.

Rows are `{region, group, residents}`; `group` null (or empty) is the region's total over all its residents.
An upload replaces the whole table; it is validated row by row (shape, catalogue codes, duplicates) and stored
only when every row is good, otherwise nothing changes and each bad row is named (`rows.3.residents`, where 3
is the 0-based index of the data row; CSV messages also give the line of the file).

The denominator rule — the residents of exactly the cells the alert was meant for. With R the alert's target
regions (none given: every region of the catalogue) and G its target groups:
- G empty (everybody): a region's population is its total row; a group's is the sum of its row over R; a
  region × group cell's is its row.
- G given: a region's population is the sum over G of its region × group rows; a group in G sums its rows over
  R; a group outside G (a targeted subscriber's other group) and cells of such groups get no population, since
  the alert was not meant for that group as such. Groups overlap (an elderly disabled person is in two rows), so
  with several target groups the sum counts such people twice and the rate is a lower bound.
- Subscribers in no group (cells with group null) have no population figure.
- The alert's own `population` is the sum of its target regions' populations.
A figure that needs a row the table lacks is null (a partial sum would overstate the rate), as is its rate;
`population_rate = reached / population`, null when the population is 0. Updates and cancels use the regions
and groups of the alert they refer to. Suppressed cells (viewer role) show no population either.
"""

from __future__ import annotations

import csv
import io
import re
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, TypeVar

from pydantic import Field, StrictInt, ValidationError, field_validator

from notifier.audit import CLI, Actor
from notifier.errors import FieldError, InvalidInput
from notifier.models import REGION_CODE, CellCoverage, Coverage, Frozen, MsgType
from notifier.store import Store
from notifier.store.records import AlertRow, PopulationRecord
from notifier.textcoding import UnreadableUpload as UnreadableUpload
from notifier.textcoding import decode_text

C = TypeVar("C", bound=CellCoverage)

MAX_ROWS = 10_000
MAX_RESIDENTS = 2_000_000_000  # fits the 32-bit INTEGER of PostgreSQL
CSV_COLUMNS = ("region", "group", "residents")
_NUMBER = re.compile(r"-?(?:\d{1,3}(?:,\d{3})+|\d+)")  # 41200 or 41,200 (spreadsheets add separators)


class PopulationRowIn(Frozen):
    """One row of an upload."""

    region: str = Field(description="six-digit region code of the catalogue")
    group: str | None = Field(default=None, max_length=50,
                              description="group code of the catalogue; null or empty: every resident of the region")
    residents: StrictInt = Field(ge=0, le=MAX_RESIDENTS, description="residents on the city's record")

    @field_validator("region")
    @classmethod
    def _region_code(cls, value: str) -> str:
        if not REGION_CODE.fullmatch(value):
            raise ValueError("not a six-digit administrative code")
        return value

    @field_validator("group")
    @classmethod
    def _empty_is_all(cls, value: str | None) -> str | None:
        return value or None


class PopulationIn(Frozen):
    """The JSON body of `PUT /v1/population` (a bare array of rows is accepted too)."""

    rows: list[PopulationRowIn] = Field(max_length=MAX_ROWS)


class PopulationRow(Frozen):
    region: str
    group: str | None = Field(description="null: the region's total over all residents")
    residents: int


class PopulationTable(Frozen):
    rows: list[PopulationRow]
    updated_at: datetime | None = Field(description="when the table was last replaced; null: never loaded")


@dataclass(frozen=True, slots=True)
class RawRow:
    """One row as uploaded, before validation; `line` is its line in a CSV file."""

    data: Any
    line: int | None = None


# ---------------------------------------------------------------- reading uploads


def rows_from_json(data: Any) -> list[RawRow]:
    """Rows of a JSON body: `{"rows": [...]}` or a bare `[...]`."""
    if isinstance(data, dict):
        unknown = [FieldError(str(k), "unknown field; send {\"rows\": [...]}") for k in data if k != "rows"]
        if unknown:
            raise InvalidInput("the body is not valid", unknown)
        data = data.get("rows")
        if data is None:
            raise InvalidInput("the body is not valid", [FieldError("rows", "required")])
    if not isinstance(data, list):
        raise InvalidInput("the body is not valid", [FieldError("rows", "must be a list of rows")])
    return [RawRow(item) for item in data]


def _column_key(cell: str) -> str:
    """`residents` of `residents`, `Residents` or an exported bilingual header `residents 常住人口`."""
    return cell.strip().split(" ", 1)[0].lower()


def rows_from_csv(raw: bytes) -> list[RawRow]:
    """Rows of a CSV upload whose header names region, group, residents (other columns are ignored)."""
    reader = csv.reader(io.StringIO(decode_text(raw), newline=""))
    header = [_column_key(c) for c in next(reader, [])]
    missing = [c for c in CSV_COLUMNS if c not in header]
    if missing or len(set(header)) != len(header):
        raise InvalidInput("the CSV header is not valid", [FieldError(
            "header", f"the first line must name each of the columns {', '.join(CSV_COLUMNS)} once")])
    index = {name: header.index(name) for name in CSV_COLUMNS}
    rows: list[RawRow] = []
    errors: list[FieldError] = []
    try:
        for cells in reader:
            if not any(c.strip() for c in cells):
                continue  # blank lines (spreadsheets add them at the end)
            if len(cells) != len(header):
                errors.append(FieldError(f"rows.{len(rows)}", f"has {len(cells)} cells, the header has "
                                                               f"{len(header)} (CSV line {reader.line_num})"))
            values = {name: cells[i].strip() if i < len(cells) else "" for name, i in index.items()}
            rows.append(RawRow({**values, "residents": _csv_number(values["residents"])}, reader.line_num))
    except csv.Error as exc:
        raise InvalidInput("the CSV file is not valid", [FieldError(f"rows.{len(rows)}", str(exc))]) from None
    if errors:
        raise InvalidInput("the CSV file is not valid", errors)
    return rows


def _csv_number(text: str) -> int | str:
    """A whole number when the cell holds one; else the text, which validation then refuses."""
    return int(text.replace(",", "")) if _NUMBER.fullmatch(text) else text


# ---------------------------------------------------------------- validating and storing


def _row_errors(exc: ValidationError, where: str, suffix: str) -> list[FieldError]:
    """pydantic errors of one row as field errors (`loc` and `msg` only: never the input)."""
    out = []
    for error in exc.errors(include_url=False, include_input=False, include_context=False):
        path = ".".join(str(p) for p in error["loc"])
        message = str(error["msg"]).removeprefix("Value error, ")
        out.append(FieldError(f"{where}.{path}" if path else where, message + suffix))
    return out


def validate_rows(raw: Sequence[RawRow], regions: set[str], groups: set[str]) -> list[PopulationRecord]:
    """Every row checked; InvalidInput naming each bad row when any is bad."""
    if len(raw) > MAX_ROWS:
        raise InvalidInput("too many rows", [FieldError("rows", f"at most {MAX_ROWS} rows")])
    records: list[PopulationRecord] = []
    errors: list[FieldError] = []
    seen: dict[tuple[str, str | None], int] = {}
    for i, row in enumerate(raw):
        where, suffix = f"rows.{i}", f" (CSV line {row.line})" if row.line else ""
        try:
            parsed = PopulationRowIn.model_validate(row.data)
        except ValidationError as exc:
            errors += _row_errors(exc, where, suffix)
            continue
        if parsed.region not in regions:
            errors.append(FieldError(f"{where}.region", f"unknown region {parsed.region!r}{suffix}"))
        if parsed.group is not None and parsed.group not in groups:
            errors.append(FieldError(f"{where}.group", f"unknown group {parsed.group!r}{suffix}"))
        key = (parsed.region, parsed.group)
        if key in seen:
            errors.append(FieldError(where, f"repeats rows.{seen[key]} (same region and group){suffix}"))
        seen.setdefault(key, i)
        records.append(PopulationRecord(region=parsed.region, group=parsed.group, residents=parsed.residents))
    if errors:
        raise InvalidInput("the population rows are not valid; nothing was stored", errors)
    return records


async def replace_population(store: Store, raw: Sequence[RawRow], now: float | None = None,
                             actor: Actor = CLI) -> PopulationTable:
    """Validate every row against the catalogue, then replace the whole table in one transaction (recorded in the
    audit log as `actor`'s population.put)."""
    regions = {r[0] for r in await store.list_regions()}
    groups = {g[0] for g in await store.list_groups()}
    records = validate_rows(raw, regions, groups)
    await store.put_population(records, time.time() if now is None else now, actor)
    return await population_table(store)


async def population_table(store: Store) -> PopulationTable:
    records = await store.population()
    updated = max((r.updated_at for r in records), default=None)
    return PopulationTable(
        rows=[PopulationRow(region=r.region, group=r.group, residents=r.residents) for r in records],
        updated_at=datetime.fromtimestamp(updated, UTC) if updated is not None else None)


# ---------------------------------------------------------------- coverage against population


class Denominators:
    """The population of an alert's regions, groups and cells (the rule is in this module's docstring)."""

    def __init__(self, table: Iterable[PopulationRecord], regions: Sequence[str], groups: Sequence[str]) -> None:
        self.rows = {(r.region, r.group): r.residents for r in table}
        self.regions = list(regions)
        self.groups = list(groups)

    def _sum(self, keys: Iterable[tuple[str, str | None]]) -> int | None:
        values = [self.rows.get(k) for k in keys]
        return None if any(v is None for v in values) else sum(v for v in values if v is not None)

    def targeted_group(self, group: str | None) -> bool:
        return group is not None and (not self.groups or group in self.groups)

    def region(self, region: str) -> int | None:
        if not self.groups:
            return self.rows.get((region, None))
        return self._sum((region, g) for g in self.groups)

    def group(self, group: str) -> int | None:
        return self._sum((r, group) for r in self.regions) if self.targeted_group(group) else None

    def cell(self, region: str, group: str | None) -> int | None:
        return self.rows.get((region, group)) if self.targeted_group(group) else None

    def total(self) -> int | None:
        values = [self.region(r) for r in self.regions]
        return None if not values or any(v is None for v in values) else sum(v for v in values if v is not None)


def _rate(part: int | None, whole: int | None) -> float | None:
    return None if part is None or not whole else part / whole


def _with(cell: C, residents: int | None) -> C:
    if cell.suppressed or residents is None:
        return cell
    return cell.model_copy(update={"population": residents, "population_rate": _rate(cell.reached, residents)})


async def _original(store: Store, alert_id: str) -> AlertRow | None:
    """The alert itself, or for an update or cancel the alert it refers to (whose targets it was sent to)."""
    alert = await store.get_alert(alert_id)
    for _ in range(10):  # a chain of updates is short; the bound only guards against a cycle
        if alert is None or alert.msg_type == MsgType.ALERT or alert.references_id is None:
            break
        alert = await store.get_alert(alert.references_id)
    return alert


async def with_population(store: Store, coverage: Coverage) -> Coverage:
    """The coverage with population figures added where the table has them (unchanged when it is empty)."""
    table = await store.population()
    alert = await _original(store, coverage.alert_id) if table else None
    if alert is None:
        return coverage
    regions = alert.target_regions or [r[0] for r in await store.list_regions()]
    d = Denominators(table, regions, alert.target_groups)
    cells = [_with(c, d.cell(c.region, c.group)) for c in coverage.cells]
    total = d.total()
    return coverage.model_copy(update={
        "population": total, "population_rate": _rate(coverage.reached, total),
        "by_region": {code: _with(c, d.region(code)) for code, c in coverage.by_region.items()},
        "by_group": {code: _with(c, d.group(code)) for code, c in coverage.by_group.items()},
        "cells": cells})
