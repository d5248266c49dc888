"""The admin dashboard (HTML under /admin): sign in with an admin or viewer key, the recent alerts with live
coverage, one alert's coverage by channel, district and group, its reach curve, failures and deliveries, and CSV
exports of every table.

Pages are rendered on the server from `admin/pages/*.html` by the shared page environment (`notifier.web.pages`)
and work without JavaScript; a small vendored script (`admin/static/admin.js`) refreshes the figures every 2
seconds while an alert goes out. Nothing is loaded from elsewhere, and the Content Security Policy says so.
Simplified Chinese first; the language follows the one rule of every page (`?lang=en`, remembered in a cookie).

`setup(app)` registers the routes and the session policy (sessions are kept in the store: `admin.session`).
"""

from __future__ import annotations

import hashlib
import re
import secrets
import time
from dataclasses import dataclass, field
from importlib.resources import files
from typing import Any
from urllib.parse import urlencode

from aiohttp import web

from notifier import limits
from notifier.errors import Forbidden, InvalidInput, Unauthorized
from notifier.i18n import N_, translator
from notifier.models import DeliveryStatus, Role
from notifier.store.records import AlertRow
from notifier.web.admin import exports as admin_csv
from notifier.web.admin.charts import duration
from notifier.web.admin.session import (
    LOGIN_COOKIE,
    SESSION_COOKIE,
    AdminSession,
    SessionStore,
    clear_cookie,
    set_cookie,
    sign_in,
    still_valid,
    tokens_match,
)
from notifier.web.admin.views import (
    LIST_PAGE,
    AlertFigures,
    DeliveryFilter,
    alert_figures,
    alert_lines,
    delivery_filter,
    delivery_page,
    department_name,
    names,
    not_yet_told,
    suppress_below,
    topic_names,
)
from notifier.web.admin.waiting import waiting_lines
from notifier.web.clients import client_of
from notifier.web.openapi import operation
from notifier.web.pages import page_lang, remember_lang, render_text, secure, stylesheet, switch_url
from notifier.web.paging import encode_cursor, time_cursor
from notifier.web.problems import read_form_body
from notifier.web.state import METRICS, SERVICE

routes = web.RouteTableDef()

STATIC = {"admin.css": "text/css", "admin.js": "text/javascript"}
CSP = ("default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self'; "
       "form-action 'self'; base-uri 'none'; frame-ancestors 'none'")
PAGE_HEADERS = {"Content-Security-Policy": CSP, "X-Content-Type-Options": "nosniff", "Cache-Control": "no-store",
                "Referrer-Policy": "same-origin", "X-Frame-Options": "DENY"}
NEXT_PATH = re.compile(r"/admin(/[A-Za-z0-9._~/-]*)?")
HTML = "text/html"
ADMIN_DOC = ("The admin dashboard (HTML, Simplified Chinese with `?lang=en`); needs a session from /admin/login "
             "(an admin or viewer key), else redirects there.")


@dataclass
class AdminState:
    """What the dashboard keeps for the life of the app: its sessions and static files."""

    sessions: SessionStore = field(default_factory=SessionStore)
    static: dict[str, tuple[bytes, str]] = field(default_factory=lambda: _static_files())


ADMIN = web.AppKey("admin", AdminState)


def setup(app: web.Application, state: AdminState | None = None) -> None:
    """Serve the dashboard from `app` (call once, before the app starts)."""
    app[ADMIN] = state or AdminState()
    app.router.add_routes(routes)


def _static_files() -> dict[str, tuple[bytes, str]]:
    folder = files("notifier.web.admin").joinpath("static")
    out = {}
    for name in STATIC:
        # The stylesheet starts with what every page shares (web/base.css).
        body = (stylesheet("notifier.web.admin", "static/admin.css").text.encode("utf-8") if name == "admin.css"
                else folder.joinpath(name).read_bytes())
        out[name] = (body, '"' + hashlib.sha256(body).hexdigest()[:16] + '"')
    return out


# ---------------------------------------------------------------- request helpers


def _lang(request: web.Request) -> str:
    return page_lang(request).lang


def render(request: web.Request, template: str, *, status: int = 200, session: AdminSession | None = None,
           **context: Any) -> web.Response:
    """A page in the request's language, with the security headers every admin page carries."""
    choice = page_lang(request)
    lang = choice.lang
    page = render_text(f"admin/{template}", lang, session=session, switch_url=switch_url(request, lang),
                       duration=lambda s: duration(s, translator(lang)), **context)
    response = web.Response(text=page, content_type=HTML, charset="utf-8", status=status, headers=PAGE_HEADERS)
    remember_lang(request, response, choice)
    return response


async def current_session(request: web.Request) -> AdminSession | None:
    """The request's signed-in session, or None; a session whose key was revoked ends here."""
    sessions, service = request.app[ADMIN].sessions, request.app[SERVICE]
    session = await sessions.get(service.store, service.secret, request.cookies.get(SESSION_COOKIE))
    if session is None:
        return None
    if not await still_valid(service.store, session):
        await sessions.drop_key(service.store, session.key_hash)
        return None
    return session


async def require_session(request: web.Request) -> AdminSession:
    """The session, or a redirect to the sign-in page that comes back here afterwards."""
    session = await current_session(request)
    if session is None:
        raise web.HTTPSeeOther(f"/admin/login?{urlencode({'next': request.path})}")
    return session


async def _alert_or_none(request: web.Request) -> AlertRow | None:
    alert_id = request.match_info["id"]
    if not re.fullmatch(r"[0-9a-f]{32}", alert_id):
        return None
    return await request.app[SERVICE].store.get_alert(alert_id)


def _not_found(request: web.Request, session: AdminSession) -> web.Response:
    return render(request, "error.html", status=404, session=session, title_key=N_("No such disclosure"),
                  body_key=N_("There is no disclosure with this id."))


# ---------------------------------------------------------------- sign in and out


def _login_page(request: web.Request, *, status: int = 200, error: str | None = None) -> web.Response:
    token = secrets.token_urlsafe(32)
    response = render(request, "login.html", status=status, csrf=token, error=error,
                      next=_safe_next(request.query.get("next")))
    set_cookie(response, LOGIN_COOKIE, token, secure=secure(request), max_age=3600)
    return response


def _safe_next(value: str | None) -> str:
    """Only a path of the dashboard itself: never another site, never a scheme or `//host`."""
    if value and NEXT_PATH.fullmatch(value) and "//" not in value and ".." not in value:
        return value
    return "/admin"


@routes.get("/admin/login")
@operation("Admin dashboard: sign-in form", "admin", {200: ("an HTML page", None)}, auth=False, media_type=HTML,
           description="A form for an admin or viewer API key, with a CSRF token.")
async def admin_login_form(request: web.Request) -> web.StreamResponse:
    if await current_session(request) is not None:
        raise web.HTTPSeeOther(_safe_next(request.query.get("next")))
    return _login_page(request)


@routes.post("/admin/login")
@operation("Admin dashboard: sign in", "admin", {303: ("signed in: a session cookie, then the dashboard", None)},
           auth=False, media_type=HTML, errors=(401, 403, 429),
           description="Form fields `key` (an admin or viewer API key; publisher keys are refused with 403), "
                       "`csrf` and `next`. Sets an HttpOnly, SameSite=Strict session cookie on /admin. After 10 "
                       "failed attempts from one client within 10 minutes, every attempt from it (right key or "
                       "wrong) gets 429 with Retry-After for 10 minutes.")
async def admin_login(request: web.Request) -> web.StreamResponse:
    service, client, now = request.app[SERVICE], client_of(request), time.time()
    try:
        await limits.check_login(service.store, service.secret, client, now)
    except limits.LoginThrottled as exc:
        request.app[METRICS].count_limited(exc.scope)
        response = _login_page(request, status=429, error=N_("Too many failed sign-ins from your network: signing "
                                                               "in is paused for 10 minutes. Please try again later."))
        response.headers["Retry-After"] = str(exc.retry_after)
        return response
    form = await read_form_body(request)
    if not tokens_match(_field(form, "csrf"), request.cookies.get(LOGIN_COOKIE)):
        return _login_page(request, status=403, error=N_("The form has expired; please submit it again."))
    try:
        key_hash, key_id, role = await sign_in(service.store, _field(form, "key") or "")
    except (Unauthorized, Forbidden) as exc:
        await limits.login_failed(service.store, service.secret, client, now)
        if isinstance(exc, Unauthorized):
            return _login_page(request, status=401, error=N_("The key is unknown or has been revoked."))
        return _login_page(request, status=403, error=N_("Publisher keys cannot sign in to the admin dashboard; "
                                                           "use an admin or viewer key."))
    sessions = request.app[ADMIN].sessions
    await sessions.drop(service.store, request.cookies.get(SESSION_COOKIE))
    session_id, _ = await sessions.create(service.store, service.secret, key_hash, key_id, role)
    response = _see_other(_safe_next(_field(form, "next")))
    set_cookie(response, SESSION_COOKIE, session_id, secure=secure(request))
    clear_cookie(response, LOGIN_COOKIE, secure=secure(request))
    return response


def _see_other(location: str) -> web.Response:
    return web.Response(status=303, headers={**PAGE_HEADERS, "Location": location})


def _field(form: Any, name: str) -> str | None:
    value = form.get(name)
    return value if isinstance(value, str) else None


@routes.post("/admin/logout")
@operation("Admin dashboard: sign out", "admin", {303: ("signed out; back to the sign-in form", None)},
           auth=False, media_type=HTML, errors=(403,), description="Form field `csrf`: the session's token.")
async def admin_logout(request: web.Request) -> web.StreamResponse:
    session = await current_session(request)
    if session is None:
        raise web.HTTPSeeOther("/admin/login")
    form = await read_form_body(request)
    if not tokens_match(_field(form, "csrf"), session.csrf):
        return render(request, "error.html", status=403, session=session, title_key=N_("Request refused"),
                      body_key=N_("The form token is missing or has expired; go back and try again."))
    await request.app[ADMIN].sessions.drop(request.app[SERVICE].store, request.cookies.get(SESSION_COOKIE))
    response = _see_other("/admin/login")
    clear_cookie(response, SESSION_COOKIE, secure=secure(request))
    return response


# ---------------------------------------------------------------- the alert list


async def _list_context(request: web.Request, session: AdminSession) -> dict[str, Any]:
    try:
        before = time_cursor(request.query.get("cursor"))
    except InvalidInput:  # a mangled link shows the first page rather than an error
        before = None
    store = request.app[SERVICE].store
    rows, total = await store.list_alerts(LIST_PAGE + 1, before)
    shown = rows[:LIST_PAGE]
    lines = await alert_lines(store, shown, _k(request, session))
    cursor = encode_cursor(shown[-1].created_at, shown[-1].id) if len(rows) > LIST_PAGE else None
    query = urlencode({"cursor": request.query["cursor"]}) if before else ""
    return {"lines": lines, "total": total, "next_cursor": cursor, "paged": before is not None,
            "any_live": any(line.live for line in lines),
            "live_url": f"/admin/live?{query}" if query else "/admin/live",
            "topic_names": topic_names(request.app[SERVICE].catalogue, _lang(request))}


@routes.get("/admin")
@operation("Admin dashboard: recent alerts with live coverage", "admin", {200: ("an HTML page", None)},
           auth=False, media_type=HTML, description=ADMIN_DOC + " Paged with `?cursor=`. Above the list: the "
                                                                 "alerts waiting for approval, with approve and "
                                                                 "reject forms for admins.")
async def admin_alerts(request: web.Request) -> web.StreamResponse:
    session = await require_session(request)
    service = request.app[SERVICE]
    waiting = await waiting_lines(service.store, service.catalogue, _lang(request), service.settings.approval.timeout)
    return render(request, "alerts.html", session=session, waiting=waiting, **await _list_context(request, session))


@routes.get("/admin/live")
@operation("Admin dashboard: the alert list's live part (HTML fragment)", "admin",
           {200: ("an HTML fragment", None)}, auth=False, media_type=HTML, errors=(401,),
           description="Polled by the dashboard's script every 2 s; 401 without a session.")
async def admin_alerts_live(request: web.Request) -> web.StreamResponse:
    session = await current_session(request)
    if session is None:
        return web.Response(status=401, headers=PAGE_HEADERS)
    return render(request, "alerts_live.html", session=session, **await _list_context(request, session))


# ---------------------------------------------------------------- one alert


def _k(request: web.Request, session: AdminSession) -> int | None:
    return suppress_below(session.role, request.app[SERVICE].settings.auth.viewer_min_cell)


def _sees_deliveries(session: AdminSession) -> bool:
    """Viewers get aggregates only: no delivery rows, no deliveries CSV (SPEC "Privacy of figures")."""
    return session.role is Role.ADMIN


async def _figures(request: web.Request, alert: AlertRow, session: AdminSession) -> AlertFigures:
    service = request.app[SERVICE]
    lang = _lang(request)
    return await alert_figures(service.store, service.catalogue, alert, role=session.role,
                               viewer_min_cell=service.settings.auth.viewer_min_cell, lang=lang)


def _channels(request: web.Request, figures: AlertFigures) -> list[str]:
    return sorted(set(figures.coverage.by_channel) | set(request.app[SERVICE].channels))


@routes.get("/admin/alerts/{id}")
@operation("Admin dashboard: one alert's coverage, charts, failures and deliveries", "admin",
           {200: ("an HTML page", None)}, auth=False, media_type=HTML, errors=(404,),
           description=ADMIN_DOC + " The deliveries table filters with `?status=&channel=` and pages with "
                                   "`?after=`.")
async def admin_alert(request: web.Request) -> web.StreamResponse:
    session = await require_session(request)
    alert = await _alert_or_none(request)
    if alert is None:
        return _not_found(request, session)
    catalogue, lang = request.app[SERVICE].catalogue, _lang(request)
    context = await _alert_context(request, alert, session)
    # Who proxies have not yet told: people, so not for viewers (as delivery rows are not).
    untold = await not_yet_told(request.app[SERVICE].store, alert.id) if session.role is not Role.VIEWER else []
    return render(request, "alert.html", session=session, statuses=[s.value for s in DeliveryStatus], untold=untold,
                  channels=_channels(request, context["fig"]),
                  topic_name=topic_names(catalogue, lang).get(alert.topic, alert.topic),
                  department=department_name(catalogue, alert.department, lang),
                  region_names=names(catalogue.regions, alert.target_regions, lang),
                  group_names=names(catalogue.groups, alert.target_groups, lang), **context)


async def _alert_context(request: web.Request, alert: AlertRow, session: AdminSession) -> dict[str, Any]:
    """What the alert page and its live fragment share: figures, and the deliveries page of the chosen filters."""
    chosen = delivery_filter(dict(request.query))
    filters = _filter_query(chosen)
    paging = urlencode({"after": chosen.cursor}) if chosen.cursor else ""
    live_query = "&".join(q for q in (filters, paging) if q)
    page = await delivery_page(request.app[SERVICE].store, alert.id, chosen) if _sees_deliveries(session) else None
    return {"alert": alert, "fig": await _figures(request, alert, session), "chosen": chosen,
            "page": page, "filter_query": filters,
            "live_url": f"/admin/alerts/{alert.id}/live" + (f"?{live_query}" if live_query else "")}


def _filter_query(chosen: DeliveryFilter) -> str:
    """The filters as a query string, for CSV and next-page links."""
    return urlencode({k: v for k, v in (("status", chosen.status.value if chosen.status else None),
                                        ("channel", chosen.channel)) if v})


@routes.get("/admin/alerts/{id}/live")
@operation("Admin dashboard: one alert's live figures (HTML fragment)", "admin", {200: ("an HTML fragment", None)},
           auth=False, media_type=HTML, errors=(401, 404),
           description="Polled by the dashboard's script every 2 s while the alert goes out (the figures and the "
                       "deliveries table, with the page's `status`, `channel` and `after`); 401 without a session.")
async def admin_alert_live(request: web.Request) -> web.StreamResponse:
    session = await current_session(request)
    if session is None:
        return web.Response(status=401, headers=PAGE_HEADERS)
    alert = await _alert_or_none(request)
    if alert is None:
        return web.Response(status=404, headers=PAGE_HEADERS)
    return render(request, "alert_fragment.html", session=session, **await _alert_context(request, alert, session))


@routes.get("/admin/alerts/{id}/export.csv")
@operation("Admin dashboard: CSV export of one alert's tables", "admin", {200: ("UTF-8 CSV with a BOM", None)},
           auth=False, media_type="text/csv", errors=(403, 404),
           description="`?table=` cells (region × group, the default), regions, groups, channels, failures or "
                       "deliveries (with the page's `status`/`channel` filters). Viewers see the figures the API "
                       "shows them (docs/privacy.md) and get 403 for deliveries. Needs a dashboard session.")
async def admin_export_csv(request: web.Request) -> web.StreamResponse:
    session = await require_session(request)
    alert = await _alert_or_none(request)
    if alert is None:
        return _not_found(request, session)
    table = request.query.get("table", "cells")
    table = table if table in admin_csv.TABLES else "cells"
    if table == "deliveries" and not _sees_deliveries(session):
        return render(request, "error.html", status=403, session=session, title_key=N_("Request refused"),
                      body_key=N_("Viewer keys see aggregate figures only, not deliveries."))
    body = await _csv_body(request, alert, session, table)
    disposition = f'attachment; filename="alert-{alert.id}-{table}.csv"'
    return web.Response(body=body.encode("utf-8"), content_type="text/csv", charset="utf-8",
                        headers={**PAGE_HEADERS, "Content-Disposition": disposition})


async def _csv_body(request: web.Request, alert: AlertRow, session: AdminSession, table: str) -> str:
    service = request.app[SERVICE]
    lang = _lang(request)
    if table == "deliveries":
        chosen = delivery_filter(dict(request.query))
        return await admin_csv.deliveries_csv(service.store, alert.id,
                                              chosen.status.value if chosen.status else None, chosen.channel)
    figures = await _figures(request, alert, session)
    coverage, catalogue = figures.coverage, service.catalogue
    if table == "regions":
        return admin_csv.regions_csv(coverage, catalogue, lang)
    if table == "groups":
        return admin_csv.groups_csv(coverage, catalogue, lang)
    if table == "channels":
        return admin_csv.channels_csv(coverage)
    if table == "failures":
        return admin_csv.failures_csv(coverage, figures.errors, lang)
    return admin_csv.cells_csv(coverage, catalogue, lang)


# ---------------------------------------------------------------- static files


@routes.get("/admin/static/{name}")
@operation("Admin dashboard: its stylesheet and script (vendored)", "admin", {200: ("CSS or JavaScript", None)},
           auth=False, media_type="text/plain", errors=(404,))
async def admin_static(request: web.Request) -> web.StreamResponse:
    name = request.match_info["name"]
    found = request.app[ADMIN].static.get(name)
    if found is None:
        raise web.HTTPNotFound()
    body, etag = found
    headers = {"ETag": etag, "Cache-Control": "no-cache", "X-Content-Type-Options": "nosniff"}
    if request.headers.get("If-None-Match") == etag:
        return web.Response(status=304, headers=headers)
    return web.Response(body=body, content_type=STATIC[name], charset="utf-8", headers=headers)

