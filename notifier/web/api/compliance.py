"""`GET /v1/catalogue/compliance?period=YYYY-MM`: per scheduled topic and period of that month, whether the
catalogue's deadline was kept (SPEC "Catalogue deadlines"; the rules are `notifier.schedule`, the figures
`notifier.compliance`)."""

from __future__ import annotations

import time
from datetime import datetime

from aiohttp import web
from pydantic import BaseModel, ConfigDict, Field

from notifier.compliance import month_compliance
from notifier.errors import FieldError, InvalidInput
from notifier.localtime import LOCAL_TZ
from notifier.schedule import ComplianceStatus, ScheduleError, parse_month
from notifier.web.auth import key_of
from notifier.web.openapi import operation
from notifier.web.problems import json_response, parse_query
from notifier.web.state import SERVICE

routes = web.RouteTableDef()


class ComplianceQuery(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    period: str | None = Field(default=None, description="the month, YYYY-MM (Asia/Shanghai); default: this month")


class ComplianceRow(BaseModel):
    model_config = ConfigDict(frozen=True)

    topic: str
    department: str
    period: str = Field(description="the disclosure owed: 2026-05 (monthly), 2026-W21 (weekly), 2026-05-20 (daily)")
    due_at: datetime = Field(description="its deadline, to the second, +08:00")
    published_at: datetime | None = Field(description="the first public alert of the topic in that period")
    status: ComplianceStatus = Field(description="on_time, late (published after the deadline, within the period), "
                                                 "overdue (not published, deadline passed), not_due")


class ComplianceList(BaseModel):
    model_config = ConfigDict(frozen=True)

    period: str
    items: list[ComplianceRow]


def period_of(value: str | None, now: float) -> str:
    """The month asked for (InvalidInput on `period` when it is not YYYY-MM), or the current one."""
    if value is None:
        return datetime.fromtimestamp(now, LOCAL_TZ).strftime("%Y-%m")
    try:
        parse_month(value)
    except ScheduleError as exc:
        raise InvalidInput("the query is not valid", [FieldError("period", str(exc))]) from None
    return value


@routes.get("/v1/catalogue/compliance")
@operation("Catalogue deadlines kept or missed", "catalogue", {200: ("every owed period of the month", ComplianceList)},
           query=ComplianceQuery,
           description="Any key (viewer and up). For each topic with a structured schedule and each of its "
                       "periods owed in the month (since the schedule was set, or its `since`): the deadline, the "
                       "first public alert of the topic in that period, and on_time / late / overdue / not_due.")
async def catalogue_compliance(request: web.Request) -> web.StreamResponse:
    await key_of(request)
    now = time.time()
    period = period_of(parse_query(request, ComplianceQuery).period, now)
    items = await month_compliance(request.app[SERVICE].store, period, now)
    return json_response(ComplianceList(period=period, items=[ComplianceRow.model_validate(i.as_json())
                                                              for i in items]))
