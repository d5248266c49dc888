"""Atom 1.0 feeds (RFC 4287) of the public column: `/disclosures/feed.atom` (every topic) and
`/disclosures/{topic}/feed.atom` (one topic; 404 for an unknown one), the newest 50 public messages each.

Unlike the list page, a feed carries updates and cancels as entries of their own: a feed reader should hear
that a warning was lifted. The filters of /disclosures apply too (`?region=140402` is a district's feed).

Built with xml.etree.ElementTree, which escapes every text and attribute; characters XML 1.0 cannot carry at all
(control characters a publisher may paste) are dropped first. Ids are `urn:uuid:` URNs: an alert's own id for an
entry, a name-based UUID of the feed's URL for the feed.
"""

from __future__ import annotations

import re
import uuid
import xml.etree.ElementTree as ET
from dataclasses import replace
from datetime import UTC, datetime
from urllib.parse import urlencode

from aiohttp import web

from notifier.i18n import translator
from notifier.models import MsgType
from notifier.store.records_public import MSG_TYPES
from notifier.terms import Terms
from notifier.web.openapi import operation
from notifier.web.problems import parse_query
from notifier.web.public.responses import (
    DATA_HEADERS,
    NO_TOPIC,
    SITE,
    base_url,
    lang_of,
    language_headers,
    not_found,
    respond,
)
from notifier.web.public.views import DisclosureQuery, PublicDisclosure, ViewContext, disclosures
from notifier.web.state import SERVICE

routes = web.RouteTableDef()

ATOM = "http://www.w3.org/2005/Atom"
ATOM_TYPE = "application/atom+xml"
XML_LANG = "{http://www.w3.org/XML/1998/namespace}lang"
FEED_SIZE = 50
EPOCH = 0.0  # `updated` of a feed with no entry yet: fixed, so that its ETag does not change on every request
_NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")
FEED_DOC = ("Public: no key. The newest 50 public messages (alerts, updates, cancels), newest first; accepts the "
            "filters of /disclosures (e.g. `?region=140402`) and `?lang=en`. ETag and Last-Modified for "
            "conditional requests.")


def _clean(text: str) -> str:
    return _NOT_XML.sub("", text)


def _stamp(moment: datetime | float) -> str:
    value = moment if isinstance(moment, datetime) else datetime.fromtimestamp(moment, UTC)
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def urn(alert_id: str) -> str:
    """An entry's id: the alert's own UUID (ids are uuid4 hex), else a name-based UUID of it."""
    try:
        return uuid.UUID(hex=alert_id).urn
    except ValueError:
        return uuid.uuid5(uuid.NAMESPACE_URL, f"notifier:alert:{alert_id}").urn


def _sub(parent: ET.Element, tag: str, text: str | None = None, **attrs: str) -> ET.Element:
    node = ET.SubElement(parent, tag, {k: _clean(v) for k, v in attrs.items()})
    if text is not None:
        node.text = _clean(text)
    return node


def _updated(item: PublicDisclosure) -> datetime:
    return max(item.published_at, item.cancelled_at or item.published_at)


def _content(item: PublicDisclosure, lang: str) -> str:
    _, terms = translator(lang).gettext, Terms(lang)
    facts = [(_("Responsible department"), item.department or terms.nothing),
             (_("Severity"), terms("severity", item.severity))]
    if item.level is not None:
        facts.append((_("Warning level"), terms("level", item.level)))
    facts += [(_("Districts"), terms.places(r.name for r in item.regions)),
              (_("For"), terms.people(g.name for g in item.groups))]
    if item.msg_type is MsgType.ALERT:  # a notice has no status of its own: it is the update or the cancel
        facts.append((_("Status"), terms("alert_status", item.status)))
    facts.append((_("Complaints and supervision"),
                  item.supervision or _("Call the 12345 government service hotline.")))
    meta = "\n".join(f"{label}{terms.colon}{value}" for label, value in facts)
    return "\n\n".join([part for part in (item.body, item.instruction) if part] + [meta])


def _prefix(item: PublicDisclosure, lang: str) -> str:
    """What an update's or a cancel's title starts with (an alert's title is its headline alone)."""
    _ = translator(lang).gettext
    return {MsgType.UPDATE: _("[Update] "), MsgType.CANCEL: _("[Cancelled] ")}.get(item.msg_type, "")


def _entry(feed: ET.Element, item: PublicDisclosure, lang: str) -> None:
    entry = _sub(feed, "entry")
    _sub(entry, "id", urn(item.id))
    _sub(entry, "title", _prefix(item, lang) + item.headline, type="text")
    _sub(entry, "updated", _stamp(_updated(item)))
    _sub(entry, "published", _stamp(item.published_at))
    author = _sub(entry, "author")
    _sub(author, "name", item.department or translator(lang).gettext(SITE))
    _sub(entry, "link", rel="alternate", type="text/html", href=item.url)
    _sub(entry, "category", term=item.topic, label=item.topic_name)
    if item.body:
        _sub(entry, "summary", item.body, type="text")
    _sub(entry, "content", _content(item, lang), type="text")


def build_feed(items: list[PublicDisclosure], *, title: str, self_url: str, alternate_url: str,
               lang: str) -> tuple[bytes, float]:
    """(the Atom document, its `updated` as unix seconds)."""
    _ = translator(lang).gettext
    # Unqualified names under an xmlns attribute: every element is in the Atom namespace, attributes in none
    # (ElementTree's default_namespace option refuses unqualified attribute names such as `rel`).
    feed = ET.Element("feed", {"xmlns": ATOM, XML_LANG: lang})
    _sub(feed, "id", uuid.uuid5(uuid.NAMESPACE_URL, self_url).urn)
    _sub(feed, "title", title, type="text")
    _sub(feed, "subtitle", _("Public-welfare information published by the city's departments (newest %(n)s)")
         % {"n": FEED_SIZE}, type="text")
    updated = max((_updated(item).timestamp() for item in items), default=EPOCH)
    _sub(feed, "updated", _stamp(updated))
    author = _sub(feed, "author")
    _sub(author, "name", _(SITE))
    _sub(feed, "link", rel="self", type=ATOM_TYPE, href=self_url)
    _sub(feed, "link", rel="alternate", type="text/html", href=alternate_url)
    _sub(feed, "generator", "notifier")
    for item in items:
        _entry(feed, item, lang)
    body = ET.tostring(feed, encoding="utf-8", xml_declaration=True)
    return body, updated


async def _feed(request: web.Request, topic: str | None) -> web.StreamResponse:
    service = request.app[SERVICE]
    query = parse_query(request, DisclosureQuery)
    lang = lang_of(request)
    base = base_url(request)
    ctx = await ViewContext.load(service.store, service.catalogue, lang, base)
    if topic is not None and topic not in ctx.names.topics:
        return not_found(request, NO_TOPIC)
    where = replace(query.store_filter(), topic=topic or query.topic, msg_types=MSG_TYPES)
    rows, _ = await service.store.public_alerts(where, FEED_SIZE, 0, ctx.now)
    items = await disclosures(service.store, rows, ctx)
    _ = translator(lang).gettext
    params = {**query.params(), **({"lang": lang} if query.lang else {})}
    alternate = {**params, **({"topic": topic} if topic else {})}
    self_url = f"{base}{request.path}" + (f"?{urlencode(params)}" if params else "")
    title = (f"{_(SITE)} · {ctx.names.topic(topic, lang)}" if topic
             else _("%(site)s · all") % {"site": _(SITE)})
    body, updated = build_feed(items, title=title, self_url=self_url, lang=lang,
                               alternate_url=f"{base}/disclosures" + (f"?{urlencode(alternate)}" if alternate else ""))
    return respond(request, body, ATOM_TYPE, last_modified=updated if items else None,
                   headers={**DATA_HEADERS, **language_headers(request)})


@routes.get("/disclosures/feed.atom")
@operation("Public column: Atom feed of every topic", "public", {200: ("an Atom 1.0 feed", None)}, auth=False,
           query=DisclosureQuery, media_type=ATOM_TYPE, description=FEED_DOC)
async def feed_all(request: web.Request) -> web.StreamResponse:
    return await _feed(request, None)


@routes.get("/disclosures/{topic}/feed.atom")
@operation("Public column: Atom feed of one topic", "public", {200: ("an Atom 1.0 feed", None)}, auth=False,
           query=DisclosureQuery, media_type=ATOM_TYPE, errors=(404,), description=FEED_DOC)
async def feed_topic(request: web.Request) -> web.StreamResponse:
    return await _feed(request, request.match_info["topic"])
