"""One-step unsubscribe from any message: `/unsubscribe/<token>` (see `citizen.manage_pages` for who may act).

GET shows what will stop (the topic and its channels) with a form; POST does it: `scope=topic` stops the link's
topic, `scope=all` every topic. A token made without a topic stops everything. The subscriber stays (contacts,
settings) until deleted on the manage page, which the done page links to.

RFC 8058 one-click: a POST whose body is `List-Unsubscribe=One-Click` (what a mail provider sends for the
`List-Unsubscribe-Post` header) stops the topic at once, without the page or its nonce.
"""

from __future__ import annotations

import logging

from aiohttp import web

from notifier import selfservice, tokens
from notifier.links import manage_url
from notifier.store.records import SubscriberRecord
from notifier.web.citizen.manage_pages import (
    HTML,
    Link,
    LinkProblem,
    channel_names,
    check_post,
    form_nonce,
    guarded,
    here,
    lang_of,
    read_link,
    render,
    same_origin,
    subscriber_of,
)
from notifier.web.openapi import operation
from notifier.web.problems import read_form_body
from notifier.web.state import SERVICE

log = logging.getLogger("notifier.web.unsubscribe")
routes = web.RouteTableDef()
ONE_CLICK = "One-Click"


async def _topic_name(request: web.Request, key: str | None, lang: str) -> str | None:
    if key is None:
        return None
    topic = await request.app[SERVICE].store.get_topic(key)
    if topic is None:
        return key
    return str(topic.get("name_en") or topic["name"]) if lang == "en" else str(topic["name"])


def _channels_of(record: SubscriberRecord, topic: str | None) -> list[str]:
    kinds: list[str] = []
    for key, channels, _ in record.subscriptions:
        if topic is None or key == topic:
            kinds += [k for k in channels if k not in kinds]
    return kinds


def _manage_link(request: web.Request, link: Link) -> str:
    """A fresh manage link, as a path on this site (pages link within themselves)."""
    return manage_url("", request.app[SERVICE].secret, link.claims.subject)


@routes.get("/unsubscribe/{token}")
@operation("Citizen page: confirm unsubscribing (HTML)", "citizen", {200: ("an HTML page", None)}, auth=False,
           media_type=HTML, errors=(404, 410),
           description="The token from a message's unsubscribe link is the credential. Shows the topic and "
                       "channels that would stop and a form; changes nothing (link scanners only GET). "
                       "Simplified Chinese first, `?lang=en` for English.")
@guarded
async def unsubscribe_page(request: web.Request) -> web.StreamResponse:
    link = read_link(request, tokens.UNSUBSCRIBE)
    record = await subscriber_of(request, link)
    lang = lang_of(request, record)
    topic = link.claims.data
    kinds = _channels_of(record, topic)
    return render(request, "unsubscribe.html", lang=lang, topic=topic,
                  topic_name=await _topic_name(request, topic, lang.lang), subscribed=bool(kinds),
                  channels=channel_names(kinds, lang.lang), action=here(request), nonce_value=form_nonce(request, link),
                  manage_url=_manage_link(request, link))


@routes.post("/unsubscribe/{token}")
@operation("Citizen page: unsubscribe (form or RFC 8058 one-click)", "citizen",
           {200: ("an HTML page saying what stopped", None)}, auth=False, media_type=HTML,
           errors=(403, 404, 410),
           description="Form fields `nonce` (from the confirmation page) and `scope` (`topic` or `all`); or the "
                       "body `List-Unsubscribe=One-Click` (RFC 8058), which needs no nonce. Cross-site browser "
                       "requests are refused (403).")
@guarded
async def unsubscribe(request: web.Request) -> web.StreamResponse:
    link = read_link(request, tokens.UNSUBSCRIBE)
    form = await read_form_body(request)
    one_click = form.get("List-Unsubscribe") == ONE_CLICK
    if one_click:
        if not same_origin(request):
            raise LinkProblem("form")
    else:
        nonce = form.get("nonce")
        check_post(request, link, nonce if isinstance(nonce, str) else None)
    record = await request.app[SERVICE].store.get_subscriber(link.claims.subject)
    if record is None:
        if one_click:  # nothing left to stop: the mail provider gets its 200 all the same
            return web.Response(status=200, text="ok", content_type="text/plain")
        raise LinkProblem("gone")
    topic = None if form.get("scope") == "all" else link.claims.data
    removed = await selfservice.unsubscribe(request.app[SERVICE].store, record.id, topic)
    log.info("subscriber %s unsubscribed from %s (%d subscriptions, %s)", record.id, topic or "everything",
             removed, "one-click" if one_click else "page")
    lang = lang_of(request, record)
    return render(request, "unsubscribed.html", lang=lang, topic_name=await _topic_name(request, topic, lang.lang),
                  manage_url=_manage_link(request, link))
