"""The dashboard's deadlines page, `/admin/compliance?period=YYYY-MM`: per department, each scheduled disclosure
owed in the month with its deadline, when it was published and whether that was on time, late, overdue or not
yet due — what `GET /v1/catalogue/compliance` lists (`notifier.compliance`), in the page's language."""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import date, datetime

from aiohttp import web

from notifier.compliance import month_compliance
from notifier.errors import InvalidInput
from notifier.localtime import LOCAL_TZ
from notifier.schedule import ComplianceItem, parse_month
from notifier.web.admin.dashboard import ADMIN_DOC, HTML, render, require_session
from notifier.web.api.compliance import period_of
from notifier.web.openapi import operation
from notifier.web.pages import page_lang
from notifier.web.state import SERVICE

routes = web.RouteTableDef()


@dataclass(frozen=True, slots=True)
class DepartmentDeadlines:
    name: str  # in the page's language
    items: list[ComplianceItem]
    overdue: int


def shift(period: str, months: int) -> str:
    """The month `months` after `period` (YYYY-MM), before it when negative."""
    year, month = parse_month(period)
    index = year * 12 + month - 1 + months
    return date(index // 12, index % 12 + 1, 1).strftime("%Y-%m")


def by_department(items: list[ComplianceItem], department_name: dict[str, str]) -> list[DepartmentDeadlines]:
    """The items grouped by department, overdue ones first within each, departments with overdue items first."""
    grouped: dict[str, list[ComplianceItem]] = {}
    for item in items:
        grouped.setdefault(item.department, []).append(item)
    out = [DepartmentDeadlines(department_name.get(name, name),
                               sorted(rows, key=lambda i: (i.status != "overdue", i.topic, i.period)),
                               sum(1 for i in rows if i.status == "overdue"))
           for name, rows in grouped.items()]
    return sorted(out, key=lambda d: (-d.overdue, d.name))


@routes.get("/admin/compliance")
@operation("Admin dashboard: disclosure deadlines per department", "admin", {200: ("an HTML page", None)},
           auth=False, media_type=HTML, errors=(422,),
           description=ADMIN_DOC + " `?period=YYYY-MM` (default: this month): what GET /v1/catalogue/compliance "
                                   "lists, grouped by department, overdue first.")
async def admin_compliance(request: web.Request) -> web.StreamResponse:
    session = await require_session(request)
    service = request.app[SERVICE]
    now = time.time()
    try:
        period = period_of(request.query.get("period") or None, now)
    except InvalidInput as exc:
        return render(request, "compliance.html", status=422, session=session, error=exc.errors[0].message,
                      period=datetime.fromtimestamp(now, LOCAL_TZ).strftime("%Y-%m"), departments=[],
                      topic_names={}, previous=None, following=None)
    items = await month_compliance(service.store, period, now)
    topics = {t["key"]: t for t in await service.store.list_topics()}
    english = page_lang(request).lang == "en"
    topic_names = {key: str((t.get("name_en") if english else None) or t["name"]) for key, t in topics.items()}
    departments = {i.department: (service.catalogue.department_en(i.department) if english else None)
                   or i.department for i in items}
    return render(request, "compliance.html", session=session, error=None, period=period,
                  departments=by_department(items, departments), topic_names=topic_names,
                  previous=shift(period, -1), following=shift(period, 1))
