"""The subscriber's own page, `/manage/<token>` (see `citizen.manage_pages` for who may act and how forms are
protected): what is held (contacts masked), forms to change topics and channels, locale and quiet hours, a JSON
download of everything held (unmasked: the owner is asking), and deletion of everything.

A form with an error is shown again with the error beside its field (422) and nothing is changed; a saved form
redirects back to the page (303), so reloading does not submit it twice.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from aiohttp import web

from notifier import selfservice, tokens
from notifier.catalogue import Catalogue
from notifier.errors import FieldError, InvalidInput
from notifier.i18n import N_, translator
from notifier.rendering import LOCAL_TZ
from notifier.store.records import SubscriberRecord
from notifier.web.citizen import unsubscribe as citizen_unsubscribe
from notifier.web.citizen.manage_pages import (
    HEADERS,
    HTML,
    Link,
    channel_names,
    check_post,
    form_nonce,
    guarded,
    here,
    lang_of,
    read_link,
    render,
    subscriber_of,
)
from notifier.web.openapi import operation
from notifier.web.problems import read_form_body
from notifier.web.state import SERVICE
from subscriptions.masking import mask_contact
from subscriptions.quiet_hours import format_hhmm

log = logging.getLogger("notifier.web.manage")
routes = web.RouteTableDef()
TOPIC_FIELD = "topic:"
DOC = ("The token from a message's manage link is the credential. Simplified Chinese first, `?lang=en` for "
       "English.")


def setup(app: web.Application) -> None:
    """Serve the subscriber's own pages (manage and unsubscribe) from `app` (call once, before it starts)."""
    app.router.add_routes(routes)
    app.router.add_routes(citizen_unsubscribe.routes)


# ---------------------------------------------------------------- what the page shows


def _name(entry: Any, lang: str) -> str:
    return str(entry.name_en or entry.name) if lang == "en" else str(entry.name)


def _when(value: float | None) -> str:
    return "" if value is None else datetime.fromtimestamp(value, LOCAL_TZ).strftime("%Y-%m-%d %H:%M")


def _held(record: SubscriberRecord, catalogue: Catalogue, lang: str,
          verified: Mapping[str, bool]) -> dict[str, Any]:
    region = catalogue.region(record.region)
    groups = [_name(g, lang) if (g := catalogue.group(code)) else code for code in record.groups]
    quiet = None
    if record.quiet_start is not None and record.quiet_end is not None:
        quiet = f"{format_hhmm(record.quiet_start)}–{format_hhmm(record.quiet_end)}"
    return {"region": _name(region, lang) if region else record.region, "groups": groups, "quiet": quiet,
            "contacts": [{"kind": kind, "masked": mask_contact(kind, address), "disabled": kind in record.disabled,
                          "verified": verified.get(kind, False)} for kind, address in record.contacts.items()]}


async def _topics(request: web.Request, record: SubscriberRecord, lang: str) -> list[dict[str, Any]]:
    """Topics grouped by domain, each with its label and the channels chosen now."""
    catalogue = request.app[SERVICE].catalogue
    grouped: dict[str, dict[str, Any]] = {}
    for choice in await selfservice.topic_choices(request.app[SERVICE].store, record):
        domain = catalogue.domain(choice.domain)
        section = grouped.setdefault(choice.domain, {"name": _name(domain, lang) if domain else choice.domain,
                                                     "topics": []})
        label = (choice.name_en or choice.name) if lang == "en" else choice.name
        section["topics"].append({"key": choice.key, "label": label, "channels": choice.channels})
    # The catalogue's domain order, as on /subscribe (topics come sorted by key, which would put 社会救助 first).
    rank = {d.code: i for i, d in enumerate(catalogue.domains)}
    return [grouped[code] for code in sorted(grouped, key=lambda code: (rank.get(code, len(rank)), code))]


async def _page(request: web.Request, link: Link, record: SubscriberRecord, *, status: int = 200,
                errors: Mapping[str, str] | None = None, values: Mapping[str, str] | None = None,
                form: str | None = None) -> web.Response:
    service = request.app[SERVICE]
    choice = lang_of(request, record)
    lang = choice.lang
    held = await service.store.held_data(record.id)
    consent = held["consent"]
    verified = {c["channel"]: c["verified_at"] is not None for c in held["contacts"]}
    current = {"locale": record.locale,
               "quiet_start": format_hhmm(record.quiet_start) if record.quiet_start is not None else "",
               "quiet_end": format_hhmm(record.quiet_end) if record.quiet_end is not None else ""}
    subscriptions = [{"topic": topic, "channels": channel_names(kinds, lang)}
                     for topic, kinds, _ in record.subscriptions]
    sections = await _topics(request, record, lang)
    names = {t["key"]: t["label"] for section in sections for t in section["topics"]}
    base = f"/manage/{link.token}"
    return render(
        request, "manage.html", lang=choice, status=status, record=record,
        held=_held(record, service.catalogue, lang, verified),
        consent_at=_when(record.consent_at), consent_version=consent["version"] if consent else None,
        subscriptions=[{**s, "name": names.get(s["topic"], s["topic"])} for s in subscriptions],
        sections=sections, usable=selfservice.usable_channels(record),
        values={**current, **(values or {})}, errors=dict(errors or {}), failed_form=form,
        saved=request.query.get("saved") == "1", nonce_value=form_nonce(request, link),
        topics_action=_action(request, base, "/topics"),
        settings_action=_action(request, base, "/settings"), data_url=_action(request, base, "/data.json"),
        delete_url=_action(request, base, "/delete"))


def _action(request: web.Request, base: str, suffix: str) -> str:
    lang = request.query.get("lang")
    return base + suffix + (f"?lang={lang}" if lang in ("zh-CN", "en") else "")


def _see_page(request: web.Request, link: Link) -> web.Response:
    location = _action(request, f"/manage/{link.token}", "")
    location += ("&" if "?" in location else "?") + "saved=1"
    return web.Response(status=303, headers={**HEADERS, "Location": location})


def _messages(exc: InvalidInput, lang: str) -> dict[str, str]:
    """Field errors in the page's language, keyed by form field."""
    _ = translator(lang).gettext
    out: dict[str, str] = {}
    for error in exc.errors:
        field, message = _message(error)
        out[field] = _(message)
    return out


def _message(error: FieldError) -> tuple[str, str]:
    """(the form field it belongs to, what to tell the reader: a msgid)."""
    if error.field == "locale":
        return "locale", N_("Choose one of the listed languages.")
    if error.field in ("start", "end"):
        return f"quiet_{error.field}", N_("Use the 24-hour clock, e.g. 22:00.")
    if error.field.startswith("topic."):
        return error.field, (N_("There is no such topic.") if error.message == "unknown topic"
                             else N_("You have no usable contact for this channel."))
    return "quiet_start", N_("Start and end must differ.")


# ---------------------------------------------------------------- routes


@routes.get("/manage/{token}")
@operation("Citizen page: my subscription (HTML)", "citizen", {200: ("an HTML page", None)}, auth=False,
           media_type=HTML, errors=(404, 410),
           description="What is held about the subscriber (contacts masked), with forms to change topics, "
                       "channels, language and quiet hours, a download and a delete button. " + DOC)
@guarded
async def manage_page(request: web.Request) -> web.StreamResponse:
    link = read_link(request, tokens.MANAGE)
    return await _page(request, link, await subscriber_of(request, link))


@routes.post("/manage/{token}/topics")
@operation("Citizen page: change topics and channels", "citizen",
           {303: ("saved; back to the page", None), 422: ("not saved; the page with the errors", None)},
           auth=False, media_type=HTML, errors=(403, 404, 410),
           description="Form fields `nonce` and `topic:<key>` (repeated, one per channel kind wanted); a topic "
                       "with no channel is unsubscribed. Nothing changes when any field is refused. " + DOC)
@guarded
async def manage_topics(request: web.Request) -> web.StreamResponse:
    link = read_link(request, tokens.MANAGE)
    form = await read_form_body(request)
    nonce = form.get("nonce")
    check_post(request, link, nonce if isinstance(nonce, str) else None)
    record = await subscriber_of(request, link)
    chosen: dict[str, list[str]] = {t["key"]: [] for t in await request.app[SERVICE].store.list_topics()}
    for name in set(form.keys()):
        if name.startswith(TOPIC_FIELD):
            chosen[name.removeprefix(TOPIC_FIELD)] = [v for v in form.getall(name) if isinstance(v, str)]
    try:
        count = await selfservice.change_subscriptions(request.app[SERVICE].store, record, chosen)
    except InvalidInput as exc:
        return await _page(request, link, record, status=422,
                           errors=_messages(exc, lang_of(request, record).lang), form="topics")
    log.info("subscriber %s changed subscriptions on the manage page (%d now)", record.id, count)
    return _see_page(request, link)


@routes.post("/manage/{token}/settings")
@operation("Citizen page: change language and quiet hours", "citizen",
           {303: ("saved; back to the page", None), 422: ("not saved; the page with the errors", None)},
           auth=False, media_type=HTML, errors=(403, 404, 410),
           description="Form fields `nonce`, `locale` (zh-CN or en), `quiet_start` and `quiet_end` (HH:MM, "
                       "Asia/Shanghai; both empty for none). " + DOC)
@guarded
async def manage_settings(request: web.Request) -> web.StreamResponse:
    link = read_link(request, tokens.MANAGE)
    form = await read_form_body(request)
    fields = {k: v if isinstance(v := form.get(k), str) else "" for k in ("nonce", "locale", "quiet_start",
                                                                          "quiet_end")}
    check_post(request, link, fields["nonce"])
    record = await subscriber_of(request, link)
    try:
        await selfservice.change_settings(request.app[SERVICE].store, record, locale=fields["locale"],
                                          quiet_start=fields["quiet_start"], quiet_end=fields["quiet_end"])
    except InvalidInput as exc:
        return await _page(request, link, record, status=422,
                           errors=_messages(exc, lang_of(request, record).lang), values=fields, form="settings")
    log.info("subscriber %s changed settings on the manage page", record.id)
    return _see_page(request, link)


@routes.get("/manage/{token}/data.json")
@operation("Citizen page: download everything held about me (JSON)", "citizen",
           {200: ("a JSON attachment", None)}, auth=False, errors=(404, 410),
           description="Everything held about the subscriber, contacts unmasked (the owner is asking): "
                       "profile, consent, contacts and their state, subscriptions, deliveries. " + DOC)
@guarded
async def manage_data(request: web.Request) -> web.StreamResponse:
    link = read_link(request, tokens.MANAGE)
    record = await subscriber_of(request, link)
    service = request.app[SERVICE]
    data = await selfservice.export(service.store, service.catalogue, record)
    log.info("subscriber %s downloaded their data", record.id)
    return web.Response(text=json.dumps(data, ensure_ascii=False, indent=2), content_type="application/json",
                        charset="utf-8", headers={**HEADERS, "Content-Disposition":
                                                  'attachment; filename="notifier-my-data.json"'})


@routes.get("/manage/{token}/delete")
@operation("Citizen page: confirm deleting everything (HTML)", "citizen", {200: ("an HTML page", None)},
           auth=False, media_type=HTML, errors=(404, 410), description="Changes nothing. " + DOC)
@guarded
async def manage_delete_page(request: web.Request) -> web.StreamResponse:
    link = read_link(request, tokens.MANAGE)
    record = await subscriber_of(request, link)
    lang = lang_of(request, record)
    return render(request, "delete.html", lang=lang, channels=channel_names(list(record.contacts), lang.lang),
                  action=here(request), back_url=_action(request, f"/manage/{link.token}", ""),
                  nonce_value=form_nonce(request, link))


@routes.post("/manage/{token}/delete")
@operation("Citizen page: delete everything held about me", "citizen", {200: ("an HTML page: deleted", None)},
           auth=False, media_type=HTML, errors=(403, 404, 410),
           description="Form field `nonce`. Removes the subscriber, contacts, groups and subscriptions from "
                       "every table and cancels pending deliveries; coverage of past alerts is unchanged. " + DOC)
@guarded
async def manage_delete(request: web.Request) -> web.StreamResponse:
    link = read_link(request, tokens.MANAGE)
    form = await read_form_body(request)
    nonce = form.get("nonce")
    check_post(request, link, nonce if isinstance(nonce, str) else None)
    record = await subscriber_of(request, link)
    await selfservice.forget(request.app[SERVICE].store, record.id)
    log.info("subscriber %s deleted their data", record.id)
    return render(request, "deleted.html", lang=lang_of(request, record))
