"""CAP 1.2 for other systems, without a key (SPEC "CAP 1.2"): `/disclosures/{id}/cap`, a public alert's CAP
document, and `/disclosures/feed.cap.atom`, an Atom feed of the newest public Actual messages (alerts, updates,
cancels) whose entries link to those documents — what emergency broadcasting or a provincial platform polls.

Only what the public column shows is here: public, gone out, and Actual (an Exercise or Test is never public).
The entries are `notifier.cap.feed`'s; the documents `notifier.interchange.cap_document`'s.
"""

from __future__ import annotations

import re
import uuid
import xml.etree.ElementTree as ET
from datetime import datetime

from aiohttp import web

from notifier.cap import CAP_MEDIA_TYPE, CAP_NS, cap_feed_entry, entry_element
from notifier.cap.feed import ATOM_NS
from notifier.errors import NotFoundError
from notifier.i18n import translator
from notifier.interchange import CapNaming, cap_document, envelope_of, is_actual, origin_of
from notifier.localtime import LOCAL_TZ
from notifier.store.records import AlertRow
from notifier.store.records_public import MSG_TYPES, PublicFilter
from notifier.web.openapi import operation
from notifier.web.public.feeds import ATOM_TYPE, EPOCH, FEED_SIZE
from notifier.web.public.responses import DATA_HEADERS, SITE, base_url, lang_of, language_headers, respond
from notifier.web.public.views import is_public, published
from notifier.web.state import SERVICE

routes = web.RouteTableDef()

ID = re.compile(r"[0-9A-Za-z_-]{1,64}")
XML_LANG = "{http://www.w3.org/XML/1998/namespace}lang"
ET.register_namespace("cap", CAP_NS)  # the feed's CAP elements read `cap:severity`, not `ns1:severity`


def _updated(row: AlertRow) -> float:
    return max(published(row), row.cancelled_at or 0.0)


def _atom_default(feed: ET.Element) -> ET.Element:
    """Atom as the feed's default namespace (ElementTree's own option refuses unprefixed attributes such as
    `rel`): Atom tags unqualified under an `xmlns` attribute, CAP's keep their `cap:` prefix."""
    prefix = f"{{{ATOM_NS}}}"
    for node in feed.iter():
        if node.tag.startswith(prefix):
            node.tag = node.tag.removeprefix(prefix)
    feed.set("xmlns", ATOM_NS)
    return feed


@routes.get("/disclosures/feed.cap.atom")
@operation("Public column: CAP 1.2 Atom feed", "public", {200: ("an Atom 1.0 feed of CAP messages", None)},
           auth=False, media_type=ATOM_TYPE,
           description="Public: no key. The newest 50 public Actual CAP messages (alerts, updates, cancels), "
                       "newest first; each entry's id and `application/cap+xml` link are its CAP document "
                       "(/disclosures/{id}/cap), with cap:event, status, msgType, urgency, severity, certainty, "
                       "expires, areaDesc and GB/T 2260 geocodes alongside. ETag and Last-Modified.")
async def cap_feed(request: web.Request) -> web.StreamResponse:
    service = request.app[SERVICE]
    now = datetime.now(LOCAL_TZ).timestamp()
    rows, _ = await service.store.public_alerts(PublicFilter(msg_types=MSG_TYPES), FEED_SIZE, 0, now)
    rows = [row for row in rows if is_actual(row)]
    base, lang = base_url(request), lang_of(request)
    self_url = f"{base}/disclosures/feed.cap.atom"
    feed = ET.Element(f"{{{ATOM_NS}}}feed", {XML_LANG: lang})
    for tag, text in (("id", uuid.uuid5(uuid.NAMESPACE_URL, self_url).urn),
                      ("title", f"{translator(lang).gettext(SITE)} · CAP 1.2")):
        ET.SubElement(feed, f"{{{ATOM_NS}}}{tag}").text = text
    updated = max((_updated(row) for row in rows), default=EPOCH)
    ET.SubElement(feed, f"{{{ATOM_NS}}}updated").text = datetime.fromtimestamp(updated, LOCAL_TZ).isoformat()
    ET.SubElement(ET.SubElement(feed, f"{{{ATOM_NS}}}author"), f"{{{ATOM_NS}}}name").text = (
        translator(lang).gettext(SITE))
    ET.SubElement(feed, f"{{{ATOM_NS}}}link", {"rel": "self", "type": ATOM_TYPE, "href": self_url})
    ET.SubElement(feed, f"{{{ATOM_NS}}}link", {"rel": "alternate", "type": "text/html",
                                                "href": f"{base}/disclosures"})
    naming = await CapNaming.load(service.store, service.catalogue)
    for row in rows:
        referenced = await service.store.get_alert(row.references_id) if row.references_id else None
        entry = cap_feed_entry(row, envelope_of(row, referenced), naming.of(row),
                               cap_url=f"{base}/disclosures/{row.id}/cap", page_url=f"{base}/disclosures/{row.id}",
                               updated=datetime.fromtimestamp(_updated(row), LOCAL_TZ), origin=origin_of(row))
        if entry is not None:
            entry_element(feed, entry)
    body = ET.tostring(_atom_default(feed), encoding="utf-8", xml_declaration=True)
    return respond(request, body, ATOM_TYPE, last_modified=updated if rows else None,
                   headers={**DATA_HEADERS, **language_headers(request)})


@routes.get("/disclosures/{id}/cap")
@operation("Public column: one disclosure as CAP 1.2", "public",
           {200: ("the CAP 1.2 document, valid against the OASIS schema", None)}, auth=False,
           media_type=CAP_MEDIA_TYPE, errors=(404,),
           description="Public: no key. The CAP document of a public Actual alert that has gone out (as "
                       "GET /v1/alerts/{id}/cap); 404 for any other id.")
async def disclosure_cap(request: web.Request) -> web.StreamResponse:
    service = request.app[SERVICE]
    alert_id = request.match_info["id"]
    row = await service.store.get_alert(alert_id) if ID.fullmatch(alert_id) else None
    if row is None or not is_public(row, datetime.now(LOCAL_TZ).timestamp()) or not is_actual(row):
        raise NotFoundError("no such public disclosure")
    body = await cap_document(service.store, service.catalogue, row,
                              page_url=f"{base_url(request)}/disclosures/{row.id}")
    return respond(request, body, CAP_MEDIA_TYPE, last_modified=_updated(row), headers=DATA_HEADERS)
