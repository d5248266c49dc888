"""Coverage routes beyond the per-alert object: population denominators, period aggregates per topic and
department, one alert's region × group × channel breakdown — each also as CSV (`?format=csv`).

Handlers are thin: read and validate the input, call one core function, format the answer.
"""

from __future__ import annotations

from aiohttp import web

from notifier.analytics import Breakdown, PeriodCoverage, PeriodQuery, alert_breakdown, period_coverage
from notifier.errors import NotFoundError
from notifier.models import Role
from notifier.population import (
    PopulationIn,
    PopulationTable,
    population_table,
    replace_population,
    rows_from_csv,
    rows_from_json,
)
from notifier.web.api import csv_export
from notifier.web.api.csv_export import CSV_TYPE, FormatQuery, csv_response, wants_csv
from notifier.web.auth import key_of, key_with_role, viewer_k
from notifier.web.openapi import operation
from notifier.web.problems import UnsupportedMediaType, json_response, parse_query, read_json
from notifier.web.state import SERVICE

routes = web.RouteTableDef()

CSV = (CSV_TYPE,)
SUPPRESSION = ("Viewer keys (threshold k, `[auth] viewer_min_cell`, default 5) see aggregates that no figure of "
               "fewer than k people can be worked out from (docs/privacy.md).")


class CoverageQuery(PeriodQuery, FormatQuery):
    """The period filter of GET /v1/coverage, and the answer's format."""


# ---------------------------------------------------------------- population


@routes.put("/v1/population")
@operation("Replace the population table", "coverage", {200: ("the stored table", PopulationTable)},
           roles=(Role.ADMIN,), body=PopulationIn, body_media_types=CSV,
           description="Residents on the city's record per region × group; coverage then also shows "
                       "`population` and `population_rate = reached / population`. The body is JSON, "
                       "`{\"rows\": [{\"region\", \"group\", \"residents\"}]}` or a bare array of rows, or a CSV "
                       "file (text/csv, UTF-8 with or without BOM, or GBK) whose header names region, group, "
                       "residents. `group` null or empty is the region's total. The whole table is replaced; any "
                       "bad row (unknown region or group, residents not a whole number ≥ 0, a repeated region × "
                       "group) is a 422 naming it as `rows.<index>.<field>` (index from 0, the first data row), "
                       "and nothing is stored.")
async def put_population(request: web.Request) -> web.StreamResponse:
    await key_with_role(request, Role.ADMIN)
    if request.content_type == CSV_TYPE:
        raw = rows_from_csv(await request.read())
    elif request.content_type == "application/json":
        raw = rows_from_json(await read_json(request))
    else:
        raise UnsupportedMediaType("send the rows as application/json or text/csv")
    return json_response(await replace_population(request.app[SERVICE].store, raw))


@routes.get("/v1/population")
@operation("The population table", "coverage", {200: ("every row, and when it was loaded", PopulationTable)},
           roles=(Role.ADMIN, Role.VIEWER), query=FormatQuery, alt_media_types=CSV)
async def get_population(request: web.Request) -> web.StreamResponse:
    await key_with_role(request, Role.ADMIN, Role.VIEWER)
    parse_query(request, FormatQuery)
    store = request.app[SERVICE].store
    table = await population_table(store)
    if wants_csv(request):
        return csv_response("population.csv", csv_export.POPULATION_COLUMNS,
                            csv_export.population_rows(table, await csv_export.names(store)))
    return json_response(table)


# ---------------------------------------------------------------- period aggregates


@routes.get("/v1/coverage")
@operation("Coverage over a period, per topic and per department", "coverage",
           {200: ("totals, by_topic and by_department", PeriodCoverage)}, query=CoverageQuery, alt_media_types=CSV,
           description="Sums over the `alert` messages (not updates or cancel notices) published in "
                       "[since, until), optionally of one topic (or a pattern such as `env.*`) and one department: "
                       "alerts, targeted, reached, accepted, rates, per-channel delivery counts, the unreachable "
                       "by cause, and time_to_reach p50/p90/p99 over all their targets. " + SUPPRESSION
                       + " Alerts with fewer than k targeted are left out of "
                       "a viewer's sums (counted in `suppressed_alerts`); an entry all of whose alerts were left out "
                       "shows `suppressed: true` and no figures.")
async def coverage_period(request: web.Request) -> web.StreamResponse:
    key = await key_of(request)
    query = parse_query(request, CoverageQuery)
    store = request.app[SERVICE].store
    k = viewer_k(request, key)
    period = await period_coverage(store, query, suppress_below=k)
    if wants_csv(request):
        return csv_response("coverage-period.csv", csv_export.period_columns(period),
                            csv_export.period_rows(period, await csv_export.names(store)))
    return json_response(period)


# ---------------------------------------------------------------- one alert's breakdown


@routes.get("/v1/alerts/{id}/coverage/breakdown")
@operation("Coverage of an alert by region × group × channel", "coverage",
           {200: ("one row per region × group × channel", Breakdown)}, query=FormatQuery, alt_media_types=CSV,
           errors=(404,),
           description="Per row: targeted (subscribers of the cell this channel was used for), attempted, sent, "
                       "delivered, failed, pending (deliveries) and reached (subscribers this channel reached "
                       "first, so a cell's rows add up to its reached). Rows with channel null are subscribers "
                       "with no usable contact. " + SUPPRESSION + " A viewer gets the rows only when none would "
                       "have to be hidden; otherwise `rows` is empty and `suppressed` is true.")
async def coverage_breakdown(request: web.Request) -> web.StreamResponse:
    key = await key_of(request)
    parse_query(request, FormatQuery)
    store = request.app[SERVICE].store
    alert = await store.get_alert(request.match_info["id"])
    if alert is None:
        raise NotFoundError("no such alert")
    k = viewer_k(request, key)
    breakdown = await alert_breakdown(store, alert.id, suppress_below=k)
    if wants_csv(request):
        return csv_response(f"breakdown-{alert.id}.csv", csv_export.BREAKDOWN_COLUMNS,
                            csv_export.breakdown_rows(breakdown, await csv_export.names(store)))
    return json_response(breakdown)
