"""CSV exports of every table the API shows: `?format=csv` (or `Accept: text/csv`) on an alert's coverage (its
region × group cells), its breakdown, its deliveries (contacts masked), the period aggregates and the population.

The files are what spreadsheet software in a government office opens correctly: UTF-8 with a byte order mark,
CRLF line ends, `Content-Disposition: attachment`. The header row is bilingual in one line: each cell is the
English field name (as in the JSON answer), a space, and a Chinese label — `region 区县代码`, `reached 已触达` —
so a script keys on the text before the first space and a person reads the rest. Region, group and channel codes
are each followed by a column with their name (Chinese labels and names come from the one catalogue, with the
official terms: `notifier.terms`). Empty cells are nulls; rates are fractions (0.5 = 50 %); times
are ISO 8601 in UTC; an entry hidden from a viewer has empty figures and `suppressed` true (hidden entries are
not all small ones: some are hidden so that the small ones cannot be worked out, so they carry no `<k` mark; the
rule is `notifier.disclosure_control`). Text that a spreadsheet would run as a formula (starting with = + - @) is
prefixed with an apostrophe.
"""

from __future__ import annotations

import csv
import io
from collections.abc import AsyncIterator, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal

from aiohttp import web
from pydantic import Field

from notifier.analytics import Aggregate, Breakdown, PeriodCoverage
from notifier.i18n import NP_, translator
from notifier.models import ChannelCoverage, Coverage, Frozen
from notifier.population import PopulationTable
from notifier.store import Store
from notifier.store.records import DeliveryRow
from notifier.terms import Terms
from notifier.web.paging import DeliveryQuery
from subscriptions.masking import mask_contact, scrub

BOM = "\ufeff"
CSV_TYPE = "text/csv"
Row = Sequence[Any]
CSV_LANG = "zh-CN"  # the language of the headers' labels and of the names in the rows
NO_GROUP = NP_("csv", "in no group")
ALL_GROUPS = NP_("csv", "all groups")
TOTAL = NP_("csv", "total")


@dataclass(frozen=True, slots=True)
class Column:
    """A column: its field name (as in the JSON answer) and its label (a msgid, said in Chinese in the header);
    a channel's own figure column names the channel first."""

    name: str
    label: tuple[str, str]
    channel: str | None = None

    def header(self) -> str:
        channel = Terms(CSV_LANG)("channel", self.channel) if self.channel else ""
        return f"{self.name} {channel}{_say(self.label)}"
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


class FormatQuery(Frozen):
    format: Literal["json", "csv"] | None = Field(
        default=None, description="csv: the table as a CSV file (UTF-8 with BOM); `Accept: text/csv` does the same")


class DeliveryListQuery(DeliveryQuery, FormatQuery):
    """The delivery listing's query; with format=csv every matching delivery is exported (limit, cursor unused)."""


def wants_csv(request: web.Request) -> bool:
    """`?format=csv`, or an Accept header that prefers text/csv to JSON (`?format=json` wins over Accept)."""
    given = request.query.get("format")
    if given is not None:
        return given == "csv"
    weights: dict[str, tuple[float, int]] = {}
    for position, part in enumerate(request.headers.get("Accept", "").split(",")):
        kind, *params = (p.strip() for p in part.split(";"))
        q = next((p.removeprefix("q=") for p in params if p.startswith("q=")), "1")
        try:
            weights.setdefault(kind.lower(), (float(q), -position))
        except ValueError:
            continue
    csv_weight = weights.get(CSV_TYPE)
    json_weight = max(weights.get("application/json", (0.0, -999)), weights.get("*/*", (0.0, -999)))
    return csv_weight is not None and csv_weight[0] > 0 and csv_weight > json_weight


# ---------------------------------------------------------------- writing


def _text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return f"{value:.6f}".rstrip("0").rstrip(".") or "0"
    if isinstance(value, datetime):
        return value.astimezone(UTC).isoformat()
    text = str(value)
    return f"'{text}" if text.startswith(_FORMULA_START) else text


def header(columns: Sequence[Column]) -> list[str]:
    return [column.header() for column in columns]


def encode(columns: Sequence[Column] | None, rows: Iterable[Row], *, bom: bool = False) -> bytes:
    """CSV bytes of some rows (with the header and BOM when asked)."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    if columns is not None:
        writer.writerow(header(columns))
    writer.writerows([_text(v) for v in row] for row in rows)
    return ((BOM if bom else "") + buffer.getvalue()).encode("utf-8")


def _disposition(filename: str) -> dict[str, str]:
    return {"Content-Type": f"{CSV_TYPE}; charset=utf-8",
            "Content-Disposition": f'attachment; filename="{filename}"', "X-Content-Type-Options": "nosniff"}


def csv_response(filename: str, columns: Sequence[Column], rows: Iterable[Row]) -> web.Response:
    return web.Response(body=encode(columns, rows, bom=True), headers=_disposition(filename))


async def stream_csv(request: web.Request, filename: str, columns: Sequence[Column],
                     batches: AsyncIterator[list[Row]]) -> web.StreamResponse:
    """A large table written as it is read, one batch at a time."""
    response = web.StreamResponse(headers=_disposition(filename))
    await response.prepare(request)
    await response.write(encode(columns, [], bom=True))
    async for batch in batches:
        await response.write(encode(None, batch))
    await response.write_eof()
    return response


# ---------------------------------------------------------------- names


@dataclass(frozen=True)
class Names:
    """Display names of catalogue codes."""

    regions: dict[str, str]
    groups: dict[str, str]
    topics: dict[str, str]

    def region(self, code: str) -> str:
        return self.regions.get(code, "")

    def group(self, code: str | None, none: tuple[str, str] = NO_GROUP) -> str:
        return _say(none) if code is None else self.groups.get(code, "")

    @staticmethod
    def channel(kind: str | None) -> str:
        """A channel's name; no channel at all means the person had no usable contact."""
        terms = Terms(CSV_LANG)
        return terms("cause", "no_contact") if kind is None else terms("channel", kind)


def _say(entry: tuple[str, str]) -> str:
    return translator(CSV_LANG).pgettext(*entry)


async def names(store: Store) -> Names:
    return Names(regions={r[0]: r[1] for r in await store.list_regions()},
                 groups={g[0]: g[1] for g in await store.list_groups()},
                 topics={t["key"]: t["name"] for t in await store.list_topics()})


# ---------------------------------------------------------------- tables


PLACE: list[Column] = [Column("region", NP_("csv", "district code")), Column("region_name", NP_("csv", "district")),
    Column("group", NP_("csv", "group code")), Column("group_name", NP_("csv", "group"))]
CELL_COLUMNS: list[Column] = [*PLACE, Column("targeted", NP_("csv", "targeted subscribers")),
    Column("reached", NP_("csv", "reached")), Column("coverage_rate", NP_("csv", "coverage rate")),
    Column("population", NP_("csv", "residents on record")),
    Column("population_rate", NP_("csv", "share of residents reached")), Column("suppressed", NP_("csv", "hidden"))]


def coverage_rows(coverage: Coverage, n: Names) -> list[Row]:
    """The region × group cells of one alert."""
    return [[c.region, n.region(c.region), c.group, n.group(c.group), c.targeted, c.reached, c.coverage_rate,
             c.population, c.population_rate, bool(c.suppressed)] for c in coverage.cells]


BREAKDOWN_COLUMNS: list[Column] = [*PLACE, Column("channel", NP_("csv", "channel code")),
    Column("channel_name", NP_("csv", "channel")), Column("targeted", NP_("csv", "targeted subscribers")),
    Column("attempted", NP_("csv", "attempted")), Column("sent", NP_("csv", "sent")),
    Column("delivered", NP_("csv", "delivered")), Column("failed", NP_("csv", "failed")),
    Column("pending", NP_("csv", "pending")), Column("reached", NP_("csv", "first reached")),
    Column("suppressed", NP_("csv", "hidden"))]


def breakdown_rows(breakdown: Breakdown, n: Names) -> list[Row]:
    """One row per region × group × channel (none when the breakdown is withheld from a viewer)."""
    return [[r.region, n.region(r.region), r.group, n.group(r.group), r.channel, n.channel(r.channel), r.targeted,
             r.attempted, r.sent, r.delivered, r.failed, r.pending, r.reached, bool(r.suppressed)]
            for r in breakdown.rows]


PERIOD_COLUMNS: list[Column] = [Column("scope", NP_("csv", "scope")), Column("key", NP_("csv", "code")),
    Column("name", NP_("csv", "name")), Column("alerts", NP_("csv", "alerts published")),
    Column("targeted", NP_("csv", "targeted subscribers")), Column("reached", NP_("csv", "reached")),
    Column("accepted", NP_("csv", "accepted")), Column("coverage_rate", NP_("csv", "coverage rate")),
    Column("accepted_rate", NP_("csv", "acceptance rate")),
    Column("time_to_reach_p50", NP_("csv", "seconds to reach half")),
    Column("time_to_reach_p90", NP_("csv", "seconds to reach 90 percent")),
    Column("time_to_reach_p99", NP_("csv", "seconds to reach 99 percent")),
    Column("unreachable_no_contact", NP_("csv", "not reached: no contact")),
    Column("unreachable_all_failed", NP_("csv", "not reached: all failed")),
    Column("unreachable_pending", NP_("csv", "not reached: pending")),
    Column("unreachable_expired", NP_("csv", "not reached: expired")),
    Column("unreachable_cancelled", NP_("csv", "not reached: cancelled")), Column("suppressed", NP_("csv", "hidden")),
    Column("suppressed_alerts", NP_("csv", "alerts left out"))]
CHANNEL_FIGURES: list[Column] = [Column("attempted", NP_("csv", "attempted")),
    Column("delivered", NP_("csv", "delivered")), Column("failed", NP_("csv", "failed")),
    Column("reach_rate", NP_("csv", "reach rate"))]


def _channel_kinds(period: PeriodCoverage) -> list[str]:
    entries = [period.total, *period.by_topic.values(), *period.by_department.values()]
    return sorted({kind for a in entries for kind in a.by_channel})


def period_columns(period: PeriodCoverage) -> list[Column]:
    """The fixed columns, then attempted/delivered/failed/reach_rate of each channel present."""
    return PERIOD_COLUMNS + [Column(f"{kind}_{c.name}", c.label, channel=kind)
                             for kind in _channel_kinds(period) for c in CHANNEL_FIGURES]


def _aggregate_row(scope: str, key: str, name: str, a: Aggregate, kinds: list[str]) -> Row:
    causes = [a.unreachable.get(c) if not a.suppressed else None
              for c in ("no_contact", "all_failed", "pending", "expired", "cancelled")]
    row: list[Any] = [scope, key, name, a.alerts, a.targeted, a.reached, a.accepted, a.coverage_rate,
                      a.accepted_rate, a.time_to_reach.p50, a.time_to_reach.p90, a.time_to_reach.p99, *causes,
                      bool(a.suppressed), a.suppressed_alerts]
    for kind in kinds:
        ch: ChannelCoverage | None = a.by_channel.get(kind)
        row += [None] * 4 if ch is None else [ch.attempted, ch.delivered, ch.failed, ch.reach_rate]
    return row


def period_rows(period: PeriodCoverage, n: Names) -> list[Row]:
    """One row for the total, then one per topic, then one per department."""
    kinds = _channel_kinds(period)
    rows = [_aggregate_row("total", "", _say(TOTAL), period.total, kinds)]
    rows += [_aggregate_row("topic", key, n.topics.get(key, ""), a, kinds) for key, a in period.by_topic.items()]
    rows += [_aggregate_row("department", key, key, a, kinds) for key, a in period.by_department.items()]
    return rows


POPULATION_COLUMNS: list[Column] = [*PLACE, Column("residents", NP_("csv", "residents on record"))]


def population_rows(table: PopulationTable, n: Names) -> list[Row]:
    return [[r.region, n.region(r.region), r.group, n.group(r.group, ALL_GROUPS), r.residents] for r in table.rows]


DELIVERY_COLUMNS: list[Column] = [Column("id", NP_("csv", "delivery id")),
    Column("subscriber_id", NP_("csv", "subscriber id")), Column("region", NP_("csv", "district code")),
    Column("region_name", NP_("csv", "district")), Column("channel", NP_("csv", "channel code")),
    Column("channel_name", NP_("csv", "channel")), Column("contact", NP_("csv", "contact (masked)")),
    Column("status", NP_("csv", "status")), Column("attempts", NP_("csv", "attempts")),
    Column("created_at", NP_("csv", "created at")), Column("sent_at", NP_("csv", "sent at")),
    Column("delivered_at", NP_("csv", "delivered at")), Column("finished_at", NP_("csv", "finished at")),
    Column("provider_message_id", NP_("csv", "provider message id")), Column("last_error", NP_("csv", "last error"))]


def _when(value: float | None) -> datetime | None:
    return None if value is None else datetime.fromtimestamp(value, UTC)


def delivery_row(d: DeliveryRow, region: str | None, n: Names) -> Row:
    """One delivery, its contact masked and any contact in the provider's error text too."""
    return [d.id, d.subscriber_id, region, n.region(region) if region else None, d.channel, n.channel(d.channel),
            mask_contact(d.channel, d.address), d.status, d.attempts, _when(d.created_at), _when(d.sent_at),
            _when(d.delivered_at), _when(d.finished_at), d.provider_message_id,
            scrub(d.last_error) if d.last_error else None]


EXPORT_BATCH = 500  # deliveries per read (and per IN-list of subscriber ids)


async def delivery_batches(store: Store, alert_id: str, query: DeliveryQuery) -> AsyncIterator[list[Row]]:
    """Every delivery of the alert matching the query's status and channel, in id order, a batch at a time."""
    n = await names(store)
    after: str | None = None
    while True:
        rows, _ = await store.list_deliveries(alert_id, EXPORT_BATCH, after,
                                              query.status.value if query.status else None, query.channel)
        if not rows:
            return
        regions = await store.target_regions(alert_id, sorted({r.subscriber_id for r in rows}))
        yield [delivery_row(r, regions.get(r.subscriber_id), n) for r in rows]
        if len(rows) < EXPORT_BATCH:
            return
        after = rows[-1].id


# ---------------------------------------------------------------- whole answers (for the alert routes)


async def coverage_csv(store: Store, coverage: Coverage) -> web.Response:
    """An alert's region × group cells as a CSV file."""
    return csv_response(f"coverage-{coverage.alert_id}.csv", CELL_COLUMNS, coverage_rows(coverage, await names(store)))


async def deliveries_csv(request: web.Request, store: Store, alert_id: str,
                         query: DeliveryQuery) -> web.StreamResponse:
    """Every delivery of an alert matching the query's filters, contacts masked, streamed."""
    return await stream_csv(request, f"deliveries-{alert_id}.csv", DELIVERY_COLUMNS,
                            delivery_batches(store, alert_id, query))
