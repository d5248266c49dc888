"""`/manage` without a link (SPEC "Citizens without a link"): `GET /manage` asks for a mobile number or an email
address, `POST /manage` sends a code (SMS) or the manage link (email) and answers the same page whether or not
anyone has that contact, `POST /manage/verify` turns the number and its code into a redirect to `/manage/<token>`.

The core is `notifier.manage_request`; the pages are the sign-up's (`citizen/pages/subscribe/`, CSRF cookie on
/manage). The send runs after the answer (`Sends`, awaited when the app stops), so the answer's time says nothing
about whether the contact is known.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from typing import Any

from aiohttp import web

from notifier import manage_request, tokens
from notifier.i18n import N_, LangChoice
from notifier.limits import RateLimited
from notifier.manage_request import Contact, Send
from notifier.web.citizen.subscribe import available_channels, checked_post, limited
from notifier.web.citizen.subscribe_pages import HTML, render, request_lang
from notifier.web.clients import client_of
from notifier.web.openapi import operation
from notifier.web.state import SERVICE
from subscriptions.masking import mask_contact

log = logging.getLogger("notifier.web.manage_request")
routes = web.RouteTableDef()
AREA = "manage"
TAG = "citizen"
STOP_WAIT = 10.0  # seconds the app waits, when it stops, for sends still in flight

ERRORS = {
    "contact": N_("Enter the mainland China mobile number or the email address you subscribed with."),
    "unavailable": N_("This service cannot send to that kind of contact; please use the other one."),
    "code": N_("That code is not right, has expired or was used too many times. Check it, or ask for a new one."),
}


class Sends:
    """Sends started after an answer: kept until they finish, awaited (then cancelled) when the app stops."""

    def __init__(self) -> None:
        self._tasks: set[asyncio.Task[bool]] = set()

    def start(self, send: Send) -> None:
        task = asyncio.create_task(send)
        self._tasks.add(task)
        task.add_done_callback(self._finished)

    def _finished(self, task: asyncio.Task[bool]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("a manage code or link could not be sent", exc_info=task.exception())

    async def close(self) -> None:
        if self._tasks:
            _, pending = await asyncio.wait(set(self._tasks), timeout=STOP_WAIT)
            for task in pending:
                task.cancel()


SENDS = web.AppKey("manage_sends", Sends)


def setup(app: web.Application) -> None:
    """Serve /manage and /manage/verify from `app` (call once, before it starts)."""
    app[SENDS] = Sends()

    async def sends(app: web.Application) -> AsyncIterator[None]:
        yield
        await app[SENDS].close()

    app.cleanup_ctx.append(sends)
    app.router.add_routes(routes)


def _kinds(request: web.Request) -> list[str]:
    """What this deployment can send a code or link to: SMS with a verification template, email."""
    return [kind for kind in available_channels(request) if kind in ("sms", "email")]


def _ask_page(request: web.Request, lang: LangChoice, *, value: str = "", error: str | None = None,
              status: int = 200) -> web.Response:
    return render(request, "manage_ask.html", lang=lang, status=status, switch=request.method == "GET",
                  area=AREA, kinds=_kinds(request), value=value, error=error)


def _sent_page(request: web.Request, lang: LangChoice, contact: Contact, *, error: str | None = None,
               status: int = 200) -> web.Response:
    return render(request, "manage_sent.html", lang=lang, status=status, area=AREA, kind=contact.kind,
                  masked=mask_contact(contact.kind, contact.address), number=contact.address, error=error)


def _field(form: Any, name: str) -> str:
    value = form.get(name)
    return value[:254] if isinstance(value, str) else ""


async def _posted_contact(request: web.Request,
                          kinds: list[str]) -> tuple[LangChoice, Any, Contact] | web.Response:
    """(language, form, contact) of a POST with its CSRF field and a contact of one of `kinds`; else the page to
    answer with (403, or the question again with why: 422)."""
    posted = await checked_post(request, AREA)
    if isinstance(posted, web.Response):
        return posted
    lang, form = posted
    raw = _field(form, "contact")
    contact = manage_request.read_contact(raw)
    if contact is None or contact.kind not in kinds:
        error = ERRORS["contact"] if contact is None else ERRORS["unavailable"]
        return _ask_page(request, lang, value=raw, error=error, status=422)
    return lang, form, contact


@routes.get("/manage")
@operation("Citizen page: get back to my subscription without a link", TAG, {200: ("an HTML page", None)},
           auth=False, media_type=HTML,
           description="Asks for the mobile number or email address subscribed with. `?lang=en` for English.")
async def manage_ask(request: web.Request) -> web.StreamResponse:
    return _ask_page(request, request_lang(request))


@routes.post("/manage")
@operation("Citizen page: send a code or my manage link", TAG,
           {200: ("the same page whether or not the contact is subscribed: a code form, or 'check your email'",
                  None)},
           auth=False, media_type=HTML, errors=(403, 422, 429),
           description="Form fields `csrf`, `lang`, `contact` (a mainland mobile number or an email address). A "
                       "subscribed, verified number gets a 6-digit code by SMS (10 minutes, 5 tries), an address "
                       "the manage link by email; the answer is the same for a contact nobody has. Limited like "
                       "every code or link (per client 5 an hour, per number or address 1 a minute and 5 a day, "
                       "`[verification] hourly_cap`): 429 with Retry-After. 422: not a number or address, or a "
                       "kind this service cannot send to.")
async def manage_send(request: web.Request) -> web.StreamResponse:
    posted = await _posted_contact(request, _kinds(request))
    if isinstance(posted, web.Response):
        return posted
    lang, _, contact = posted
    service = request.app[SERVICE]
    try:
        send = await manage_request.request_access(
            service.store, service.channels, secret=service.secret, public_url=service.settings.server.base_url(),
            contact=contact, client=client_of(request), hourly_cap=service.settings.verification.hourly_cap,
            lang=lang.lang)
    except RateLimited as exc:
        return limited(request, lang, exc, area=AREA)
    if send is not None:
        request.app[SENDS].start(send)
    return _sent_page(request, lang, contact)


@routes.post("/manage/verify")
@operation("Citizen page: open my subscription with the texted code", TAG,
           {303: ("the code is right: on to /manage/<token>", None)}, auth=False, media_type=HTML,
           errors=(403, 422),
           description="Form fields `csrf`, `lang`, `contact` (the number) and `code` (6 digits). 422 shows the code "
                       "form again, saying the same for a wrong, expired or used-up code and a number nobody has.")
async def manage_verify(request: web.Request) -> web.StreamResponse:
    posted = await _posted_contact(request, ["sms"])
    if isinstance(posted, web.Response):
        return posted
    lang, form, contact = posted
    service = request.app[SERVICE]
    found = await manage_request.check_code(service.store, service.secret, contact.address, _field(form, "code"))
    if found is None:
        return _sent_page(request, lang, contact, error=ERRORS["code"], status=422)
    token = tokens.make_token(service.secret, tokens.MANAGE, found)
    raise web.HTTPSeeOther(f"/manage/{token}?lang={lang.lang}")
