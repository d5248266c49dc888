"""CSV exports of the admin tables: UTF-8 with a byte-order mark (so that spreadsheet software opens Chinese
names correctly), CRLF line ends, a header row of stable English column names, names in the page's language.

Figures are those of the page (the coverage object, viewers' small cells suppressed: their counts are empty and
`suppressed` is `true`); contacts are masked. A cell that a spreadsheet would run as a formula (`=`, `+`, `-`,
`@`, tab, CR at its start) is prefixed with `'`: provider error texts are not ours to trust.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Sequence

from notifier.catalogue import Catalogue
from notifier.causes import CauseCount
from notifier.models import CellCoverage, Coverage
from notifier.store import Store
from notifier.terms import Terms
from notifier.web.api.alerts import delivery_view

BOM = "\ufeff"
TABLES = ("cells", "regions", "groups", "channels", "failures", "deliveries")
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
EXPORT_PAGE = 1000


def _safe(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return f"{value:.6g}"
    text = str(value)
    if isinstance(value, str) and text.startswith(_FORMULA_START):
        return "'" + text
    return text


def csv_text(header: Sequence[str], rows: Iterable[Sequence[object]]) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(header)
    for row in rows:
        writer.writerow([_safe(v) for v in row])
    return BOM + out.getvalue()


def _name(catalogue: Catalogue, kind: str, code: str | None, lang: str) -> str:
    if code is None:
        return ""
    item = catalogue.region(code) if kind == "region" else catalogue.group(code)
    if item is None:
        return code
    return (item.name_en or item.name) if lang == "en" else item.name


def _figures(cell: CellCoverage) -> list[object]:
    return [cell.targeted, cell.reached, cell.coverage_rate, bool(cell.suppressed), cell.population,
            cell.population_rate]


# population columns stay empty unless a population table is loaded (PUT /v1/population)
FIGURES = ["targeted", "reached", "coverage_rate", "suppressed", "population", "population_rate"]


def cells_csv(coverage: Coverage, catalogue: Catalogue, lang: str) -> str:
    """Region × group: one row per cell (group empty for people in no group)."""
    return csv_text(["region", "region_name", "group", "group_name", *FIGURES],
                    ([c.region, _name(catalogue, "region", c.region, lang), c.group,
                      _name(catalogue, "group", c.group, lang), *_figures(c)] for c in coverage.cells))


def regions_csv(coverage: Coverage, catalogue: Catalogue, lang: str) -> str:
    return csv_text(["region", "region_name", *FIGURES],
                    ([code, _name(catalogue, "region", code, lang), *_figures(cell)]
                     for code, cell in coverage.by_region.items()))


def groups_csv(coverage: Coverage, catalogue: Catalogue, lang: str) -> str:
    return csv_text(["group", "group_name", *FIGURES],
                    ([code, _name(catalogue, "group", code, lang), *_figures(cell)]
                     for code, cell in coverage.by_group.items()))


def channels_csv(coverage: Coverage) -> str:
    fields = ["attempted", "sent", "delivered", "failed", "pending", "awaiting_receipt", "skipped", "reach_rate"]
    return csv_text(["channel", *fields],
                    ([kind, *(getattr(c, f) for f in fields)] for kind, c in coverage.by_channel.items()))


def failures_csv(coverage: Coverage, errors: list[CauseCount] | None, lang: str) -> str:
    """Both failure tables in one file: people not reached by cause, then failed deliveries by cause (its key,
    its words in the page's language, the raw code masked)."""
    terms = Terms(lang)
    rows: list[list[object]] = [["unreachable", cause, terms("cause", cause), "", count, ""]
                                for cause, count in coverage.unreachable.items()]
    rows += [["delivery_error", e.cause.key, e.cause.words(lang), e.channel, e.count, e.cause.raw or ""]
             for e in errors or []]
    return csv_text(["kind", "code", "label", "channel", "count", "raw"], rows)


async def deliveries_csv(store: Store, alert_id: str, status: str | None, channel: str | None) -> str:
    """Every delivery of the alert (filters as on the page), contacts masked, read a page at a time."""
    header = ["id", "subscriber_id", "channel", "contact", "status", "attempts", "sent_at", "delivered_at",
              "finished_at", "last_error"]
    rows: list[list[object]] = []
    after: str | None = None
    while True:
        page, _ = await store.list_deliveries(alert_id, EXPORT_PAGE, after, status, channel)
        for d in map(delivery_view, page):
            rows.append([d.id, d.subscriber_id, d.channel, d.contact, d.status.value, d.attempts,
                         *(v.isoformat() if v else None for v in (d.sent_at, d.delivered_at, d.finished_at)),
                         d.last_error])
        if len(page) < EXPORT_PAGE:
            return csv_text(header, rows)
        after = page[-1].id
