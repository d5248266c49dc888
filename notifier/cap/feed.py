"""The entries of `GET /disclosures/feed.cap.atom`: an Atom 1.0 index of public, Actual alerts whose entries link
to their CAP documents (`GET /disclosures/{id}/cap`), in the shape of the OASIS CAP feeds practice (as the
national weather services publish them): the entry's `id` is the CAP document's URL, a link with
`type="application/cap+xml"` points to it, a `text/html` link to the public page, and a few CAP elements ride
along in the CAP namespace (`cap:event`, `cap:status`, `cap:msgType`, `cap:urgency`, `cap:severity`,
`cap:certainty`, `cap:expires`, `cap:areaDesc`, `cap:geocode`) so that a reader can filter without fetching.

`cap_feed_entry` decides and gathers (None for an alert that must not appear); `entry_element` writes one entry
into an ElementTree Atom feed (the web edge builds the feed around it, as `web/public_feeds.py` does).
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from dataclasses import dataclass
from datetime import datetime

from notifier.cap.imports import CapOrigin
from notifier.cap.model import (
    CAP_MEDIA_TYPE,
    CAP_NS,
    DEFAULT_CERTAINTY,
    GBT_2260,
    MSG_TYPE_TO_CAP,
    SEVERITY_TO_CAP,
    URGENCY_TO_CAP,
    CapStatus,
    format_cap_time,
    xml_text,
)
from notifier.cap.render import CapEnvelope, CapNames, CapSource
from notifier.models import MsgType, Severity, Urgency

ATOM_NS = "http://www.w3.org/2005/Atom"


@dataclass(frozen=True, slots=True)
class FeedLink:
    rel: str
    type: str
    href: str


@dataclass(frozen=True, slots=True)
class CapFeedEntry:
    id: str
    title: str
    updated: datetime
    published: datetime
    author: str
    summary: str
    links: tuple[FeedLink, ...]
    cap: tuple[tuple[str, str], ...]  # (CAP element, text), in this order
    geocodes: tuple[tuple[str, str], ...]  # (valueName, value)


def cap_feed_entry(alert: CapSource, envelope: CapEnvelope, names: CapNames, *, cap_url: str, page_url: str,
                   updated: datetime | None = None, origin: CapOrigin | None = None) -> CapFeedEntry | None:
    """The entry of a public, Actual alert; None for any other (not public, Exercise, Test…)."""
    if not alert.public or envelope.status is not CapStatus.ACTUAL:
        return None
    areas = "；".join(names.regions.get(code, (code, None))[0] for code in alert.target_regions)
    cap = [("event", origin.event if origin else names.topic_name), ("status", envelope.status.value),
           ("msgType", MSG_TYPE_TO_CAP[MsgType(alert.msg_type)]),
           ("urgency", URGENCY_TO_CAP[Urgency(alert.urgency)]),
           ("severity", SEVERITY_TO_CAP[Severity(alert.severity)]),
           ("certainty", origin.certainty if origin else DEFAULT_CERTAINTY)]
    if alert.expires_at is not None:
        cap.append(("expires", format_cap_time(alert.expires_at)))
    cap.append(("areaDesc", areas or "全部区域"))
    return CapFeedEntry(
        id=cap_url, title=alert.headline, updated=updated or envelope.sent, published=envelope.sent,
        author=names.department or envelope.sender, summary=alert.body,
        links=(FeedLink("alternate", CAP_MEDIA_TYPE, cap_url), FeedLink("related", "text/html", page_url)),
        cap=tuple(cap), geocodes=tuple((GBT_2260, code) for code in alert.target_regions))


def _sub(parent: ET.Element, tag: str, text: str | None = None, **attrs: str) -> ET.Element:
    node = ET.SubElement(parent, tag, {key: xml_text(value) for key, value in attrs.items()})
    if text is not None:
        node.text = xml_text(text)
    return node


def entry_element(feed: ET.Element, entry: CapFeedEntry) -> ET.Element:
    """Append the entry to an Atom `feed` element (namespaced tags: `{http://www.w3.org/2005/Atom}feed`)."""
    atom = f"{{{ATOM_NS}}}"
    node = _sub(feed, atom + "entry")
    _sub(node, atom + "id", entry.id)
    _sub(node, atom + "title", entry.title, type="text")
    _sub(node, atom + "updated", format_cap_time(entry.updated))
    _sub(node, atom + "published", format_cap_time(entry.published))
    _sub(_sub(node, atom + "author"), atom + "name", entry.author)
    for link in entry.links:
        _sub(node, atom + "link", rel=link.rel, type=link.type, href=link.href)
    if entry.summary:
        _sub(node, atom + "summary", entry.summary, type="text")
    for local, text in entry.cap:
        _sub(node, f"{{{CAP_NS}}}{local}", text)
    for name, value in entry.geocodes:
        geocode = _sub(node, f"{{{CAP_NS}}}geocode")
        _sub(geocode, f"{{{CAP_NS}}}valueName", name)
        _sub(geocode, f"{{{CAP_NS}}}value", value)
    return node
