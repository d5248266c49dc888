"""CSV exports of every table the API shows: `?format=csv` (or `Accept: text/csv`) on an alert's coverage (its
region × group cells), its breakdown, its deliveries (contacts masked), the period aggregates and the population.

The files are what spreadsheet software in a government office opens correctly: UTF-8 with a byte order mark,
CRLF line ends, `Content-Disposition: attachment`. The header row is bilingual in one line: each cell is the
English field name (as in the JSON answer), a space, and a Chinese label — `region 区县代码`, `reached 已触达` —
so a script keys on the text before the first space and a person reads the rest. Region, group and channel codes
are each followed by a column with their name. Empty cells are nulls; rates are fractions (0.5 = 50 %); times
are ISO 8601 in UTC; cells suppressed for a viewer read `<k` (e.g. `<5`) with no other figures. Text that a
spreadsheet would run as a formula (starting with = + - @) is prefixed with an apostrophe.
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
from notifier.models import ChannelCoverage, Coverage, Frozen
from notifier.population import PopulationTable
from notifier.store.protocol import Store
from notifier.store.records import DeliveryRow
from notifier.web.paging import DeliveryQuery
from subscriptions.masking import mask_contact, scrub

BOM = "\ufeff"
CSV_TYPE = "text/csv"
Column = tuple[str, str]  # field name, Chinese label
Row = Sequence[Any]

CHANNEL_NAMES = {"sms": "短信", "wechat": "微信", "email": "电子邮件", "webhook": "Webhook"}
NO_GROUP = "无所属人群"
ALL_GROUPS = "全部人群"
NO_CHANNEL = "无可用联系方式"
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
    return [f"{name} {label}" for name, label in columns]


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

    def group(self, code: str | None, none: str = NO_GROUP) -> str:
        return none if code is None else self.groups.get(code, "")

    @staticmethod
    def channel(kind: str | None) -> str:
        return NO_CHANNEL if kind is None else CHANNEL_NAMES.get(kind, kind)


async def names(store: Store) -> Names:
    return Names(regions={r[0]: r[1] for r in await store.list_regions()},
                 groups={g[0]: g[1] for g in await store.list_groups()},
                 topics={t["key"]: t["name"] for t in await store.list_topics()})


# ---------------------------------------------------------------- tables


PLACE: list[Column] = [("region", "区县代码"), ("region_name", "区县"), ("group", "人群代码"), ("group_name", "人群")]
CELL_COLUMNS: list[Column] = [*PLACE, ("targeted", "目标订阅者"), ("reached", "已触达"), ("coverage_rate", "覆盖率"),
                              ("population", "在册人口"), ("population_rate", "人口覆盖率"), ("suppressed", "已隐藏")]


def _small(k: int | None) -> str:
    return f"<{k}" if k else ""


def coverage_rows(coverage: Coverage, n: Names, k: int | None) -> list[Row]:
    """The region × group cells of one alert."""
    return [[c.region, n.region(c.region), c.group, n.group(c.group),
             _small(k) if c.suppressed else c.targeted, _small(k) if c.suppressed else c.reached,
             c.coverage_rate, c.population, c.population_rate, bool(c.suppressed)] for c in coverage.cells]


BREAKDOWN_COLUMNS: list[Column] = [
    *PLACE, ("channel", "渠道代码"), ("channel_name", "渠道"), ("targeted", "目标订阅者"), ("attempted", "已尝试"),
    ("sent", "已发送"), ("delivered", "已送达"), ("failed", "失败"), ("pending", "待发送"),
    ("reached", "首次触达"), ("suppressed", "已隐藏")]


def breakdown_rows(breakdown: Breakdown, n: Names, k: int | None) -> list[Row]:
    out: list[Row] = []
    for r in breakdown.rows:
        figures: list[Any] = [r.targeted, r.attempted, r.sent, r.delivered, r.failed, r.pending, r.reached]
        if r.suppressed:
            figures = [_small(k), None, None, None, None, None, None]
        out.append([r.region, n.region(r.region), r.group, n.group(r.group), r.channel, n.channel(r.channel),
                    *figures, bool(r.suppressed)])
    return out


PERIOD_COLUMNS: list[Column] = [
    ("scope", "统计范围"), ("key", "代码"), ("name", "名称"), ("alerts", "发布条数"), ("targeted", "目标订阅者"),
    ("reached", "已触达"), ("accepted", "已受理"), ("coverage_rate", "覆盖率"), ("accepted_rate", "受理率"),
    ("time_to_reach_p50", "半数触达用时(秒)"), ("time_to_reach_p90", "九成触达用时(秒)"),
    ("time_to_reach_p99", "99%触达用时(秒)"), ("unreachable_no_contact", "未触达-无联系方式"),
    ("unreachable_all_failed", "未触达-全部失败"), ("unreachable_pending", "未触达-待处理"),
    ("unreachable_expired", "未触达-已过期"), ("unreachable_cancelled", "未触达-已撤销"), ("suppressed", "已隐藏")]
CHANNEL_FIGURES: list[Column] = [("attempted", "已尝试"), ("delivered", "已送达"), ("failed", "失败"),
                                 ("reach_rate", "送达率")]


def _channel_kinds(period: PeriodCoverage) -> list[str]:
    entries = [period.total, *period.by_topic.values(), *period.by_department.values()]
    return sorted({kind for a in entries for kind in a.by_channel})


def period_columns(period: PeriodCoverage) -> list[Column]:
    """The fixed columns, then attempted/delivered/failed/reach_rate of each channel present."""
    return PERIOD_COLUMNS + [(f"{kind}_{name}", f"{Names.channel(kind)}{label}")
                             for kind in _channel_kinds(period) for name, label in CHANNEL_FIGURES]


def _aggregate_row(scope: str, key: str, name: str, a: Aggregate, kinds: list[str], k: int | None) -> Row:
    small = _small(k) if a.suppressed else None
    causes = [a.unreachable.get(c) if not a.suppressed else None
              for c in ("no_contact", "all_failed", "pending", "expired", "cancelled")]
    row: list[Any] = [scope, key, name, a.alerts, small or a.targeted, small or a.reached, small or a.accepted,
                      a.coverage_rate, a.accepted_rate, a.time_to_reach.p50, a.time_to_reach.p90,
                      a.time_to_reach.p99, *causes, bool(a.suppressed)]
    for kind in kinds:
        ch: ChannelCoverage | None = a.by_channel.get(kind)
        row += [None] * 4 if ch is None else [ch.attempted, ch.delivered, ch.failed, ch.reach_rate]
    return row


def period_rows(period: PeriodCoverage, n: Names, k: int | None) -> list[Row]:
    """One row for the total, then one per topic, then one per department."""
    kinds = _channel_kinds(period)
    rows = [_aggregate_row("total", "", "合计", period.total, kinds, k)]
    rows += [_aggregate_row("topic", key, n.topics.get(key, ""), a, kinds, k) for key, a in period.by_topic.items()]
    rows += [_aggregate_row("department", key, key, a, kinds, k) for key, a in period.by_department.items()]
    return rows


POPULATION_COLUMNS: list[Column] = [*PLACE, ("residents", "在册人口")]


def population_rows(table: PopulationTable, n: Names) -> list[Row]:
    return [[r.region, n.region(r.region), r.group, n.group(r.group, ALL_GROUPS), r.residents] for r in table.rows]


DELIVERY_COLUMNS: list[Column] = [
    ("id", "投递编号"), ("subscriber_id", "订阅者编号"), ("region", "区县代码"), ("region_name", "区县"),
    ("channel", "渠道代码"), ("channel_name", "渠道"), ("contact", "联系方式(已脱敏)"), ("status", "状态"),
    ("attempts", "尝试次数"), ("created_at", "创建时间"), ("sent_at", "发送时间"), ("delivered_at", "送达时间"),
    ("finished_at", "结束时间"), ("provider_message_id", "服务商消息编号"), ("last_error", "最后错误")]


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


async def coverage_csv(store: Store, coverage: Coverage, k: int | None) -> web.Response:
    """An alert's region × group cells as a CSV file."""
    return csv_response(f"coverage-{coverage.alert_id}.csv", CELL_COLUMNS,
                        coverage_rows(coverage, await names(store), k))


async def deliveries_csv(request: web.Request, store: Store, alert_id: str,
                         query: DeliveryQuery) -> web.StreamResponse:
    """Every delivery of an alert matching the query's filters, contacts masked, streamed."""
    return await stream_csv(request, f"deliveries-{alert_id}.csv", DELIVERY_COLUMNS,
                            delivery_batches(store, alert_id, query))
