"""The public disclosure column (政府网站专题专栏): `/disclosures` (every published public alert, searchable and
filterable, paged; also as JSON), `/disclosures/{id}` (one disclosure's permanent page, the link in every message)
and `/catalogue` (公开目录). The Atom feeds are in `public.feeds`.

No key is needed and nothing about subscribers is ever shown; an alert published with `public: false`, or not yet
gone out, does not exist here (404). Pages are Simplified Chinese first with `?lang=en`, work without JavaScript
(plain GET form) and are cacheable for a minute.
"""

from __future__ import annotations

import math
import re
from typing import Any
from urllib.parse import urlencode

from aiohttp import web
from pydantic import BaseModel

from notifier.errors import FieldError, InvalidInput, NotFoundError
from notifier.models import Level, Severity
from notifier.schedule import from_stored, schedule_words
from notifier.store.records import AlertRow
from notifier.web.openapi import operation
from notifier.web.problems import dumps, parse_query
from notifier.web.public.catalogue import PublicCatalogue, build_catalogue
from notifier.web.public.responses import (
    DATA_HEADERS,
    HTML,
    base_url,
    lang_of,
    language_headers,
    link_lang,
    not_found,
    render_page,
    respond,
)
from notifier.web.public.views import (
    PER_PAGE,
    DisclosurePage,
    DisclosureQuery,
    PublicDisclosure,
    ViewContext,
    disclosure,
    disclosures,
    is_public,
    load_names,
    published,
)
from notifier.web.state import SERVICE

routes = web.RouteTableDef()

JSON = "application/json"
ID = re.compile(r"[0-9A-Za-z_-]{1,64}")
FORM_FIELDS = ("q", "topic", "domain", "region", "level", "severity", "from", "to")
PUBLIC_DOC = ("Public: no key. Simplified Chinese; `?lang=en` for English (without `?lang=`, the reader's "
              "remembered choice or Accept-Language).")


def _json(request: web.Request, model: BaseModel, last_modified: float | None = None) -> web.Response:
    return respond(request, dumps(model.model_dump(mode="json")).encode("utf-8"), JSON, last_modified=last_modified,
                   headers={**DATA_HEADERS, **language_headers(request)})


def _wants_json(request: web.Request) -> bool:
    return request.query.get("format") == "json"


async def _context(request: web.Request) -> ViewContext:
    service = request.app[SERVICE]
    return await ViewContext.load(service.store, service.catalogue, lang_of(request), base_url(request))


async def _search(request: web.Request, query: DisclosureQuery,
                  ctx: ViewContext) -> tuple[list[PublicDisclosure], int, int]:
    """(disclosures of the requested page, total matching, number of pages)."""
    store = request.app[SERVICE].store
    rows, total = await store.public_alerts(query.store_filter(), PER_PAGE, (query.page - 1) * PER_PAGE, ctx.now)
    return await disclosures(store, rows, ctx), total, max(1, math.ceil(total / PER_PAGE))


def _page_json(request: web.Request, query: DisclosureQuery, items: list[PublicDisclosure], total: int,
               pages: int) -> DisclosurePage:
    following = None
    if query.page < pages:
        params: dict[str, Any] = {**query.params(), "page": query.page + 1}
        if query.lang:
            params["lang"] = query.lang
        following = f"{base_url(request)}/disclosures.json?{urlencode(params)}"
    return DisclosurePage(items=items, total=total, page=query.page, pages=pages, per_page=PER_PAGE, next=following)


async def _json_listing(request: web.Request) -> web.StreamResponse:
    query = parse_query(request, DisclosureQuery)
    items, total, pages = await _search(request, query, await _context(request))
    return _json(request, _page_json(request, query, items, total, pages))


def _form(request: web.Request) -> dict[str, str]:
    return {name: request.query.get(name, "") for name in FORM_FIELDS}


async def _html_listing(request: web.Request) -> web.StreamResponse:
    ctx = await _context(request)
    errors: list[FieldError] = []
    try:
        query = parse_query(request, DisclosureQuery)
    except InvalidInput as exc:
        errors = exc.errors
    if errors:
        items: list[PublicDisclosure] = []
        total, pages, query = 0, 1, DisclosureQuery()
    else:
        items, total, pages = await _search(request, query, ctx)
    catalogue = build_catalogue(ctx.names, ctx.lang, link_lang(request))
    regions = sorted(ctx.names.regions)
    return render_page(
        request, "list.html", status=422 if errors else 200, section="list", items=items, total=total,
        page=query.page, pages=pages, params=query.params(), form=_form(request), errors=errors,
        catalogue=catalogue, regions=[(code, ctx.names.region(code, ctx.lang)) for code in regions],
        levels=[lv.value for lv in Level], severities=[s.value for s in Severity],
        topic_feed=f"/disclosures/{query.topic}/feed.atom" if query.topic in ctx.names.topics else None)


@routes.get("/disclosures")
@operation("Public column: published disclosures, newest first (HTML; ?format=json for JSON)", "public",
           {200: ("an HTML page (with ?format=json: a page of disclosures as /disclosures.json)", None)},
           auth=False, query=DisclosureQuery, media_type=HTML, alt_media_types=(JSON,),
           description=f"{PUBLIC_DOC} Searchable (`q`), filterable by topic, domain, district (`region`: "
                       "aimed at it or at the whole city), day range (`from`, `to`), level and severity; "
                       f"{PER_PAGE} per page. Only alerts published with `public: true` that have gone out.")
async def disclosures_page(request: web.Request) -> web.StreamResponse:
    if _wants_json(request):
        return await _json_listing(request)
    return await _html_listing(request)


@routes.get("/disclosures.json")
@operation("Public column: published disclosures as JSON", "public", {200: ("a page of disclosures", DisclosurePage)},
           auth=False, query=DisclosureQuery,
           description=f"{PUBLIC_DOC} The same search and filters as /disclosures.")
async def disclosures_json(request: web.Request) -> web.StreamResponse:
    return await _json_listing(request)


# ---------------------------------------------------------------- one disclosure


async def _public_alert(request: web.Request, now: float) -> AlertRow | None:
    alert_id = request.match_info["id"]
    row = await request.app[SERVICE].store.get_alert(alert_id) if ID.fullmatch(alert_id) else None
    return row if row is not None and is_public(row, now) else None


def _last_change(row: AlertRow, follow_ups: list[AlertRow]) -> float:
    return max([published(row), row.cancelled_at or 0.0, *(published(f) for f in follow_ups)])


@routes.get("/disclosures/{id}")
@operation("Public column: one disclosure's permanent page (HTML; ?format=json for JSON)", "public",
           {200: ("an HTML page (with ?format=json: the disclosure)", PublicDisclosure)}, auth=False,
           media_type=HTML, alt_media_types=(JSON,), errors=(404,),
           description=f"{PUBLIC_DOC} The page every message links to: text, responsible department, time, "
                       "level, districts and groups, status with links to update and cancel notices, and the "
                       "topic's supervision channel. 404 for an unknown or non-public id.")
async def disclosure_page(request: web.Request) -> web.StreamResponse:
    ctx = await _context(request)
    row = await _public_alert(request, ctx.now)
    if row is None:
        if _wants_json(request):
            raise NotFoundError("no such public disclosure")
        return not_found(request)
    store = request.app[SERVICE].store
    follow_ups = await store.public_follow_ups([row.id], ctx.now)
    original = await store.get_alert(row.references_id) if row.references_id else None
    item = disclosure(row, follow_ups, ctx, original if is_public(original, ctx.now) else None)
    modified = _last_change(row, follow_ups)
    if _wants_json(request):
        return _json(request, item, last_modified=modified)
    topic = ctx.names.topics.get(row.topic, {})
    schedule = schedule_words(from_stored(topic.get("schedule")), ctx.lang)
    return render_page(request, "detail.html", last_modified=modified, section="detail", d=item,
                       method=topic.get("method"), schedule=schedule)


# ---------------------------------------------------------------- the catalogue


@routes.get("/catalogue")
@operation("Public column: the disclosure catalogue (公开目录) (HTML; ?format=json for JSON)", "public",
           {200: ("an HTML page (with ?format=json: the catalogue)", PublicCatalogue)}, auth=False,
           media_type=HTML, alt_media_types=(JSON,),
           description=f"{PUBLIC_DOC} Every topic by domain with its responsible department, disclosure method, "
                       "channels, schedule and supervision channel.")
async def catalogue_page(request: web.Request) -> web.StreamResponse:
    service = request.app[SERVICE]
    lang = lang_of(request)
    catalogue = build_catalogue(await load_names(service.store, service.catalogue), lang, link_lang(request))
    if _wants_json(request):
        return _json(request, catalogue)
    return render_page(request, "catalogue.html", section="catalogue", catalogue=catalogue)
