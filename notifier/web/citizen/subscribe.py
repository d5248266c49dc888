"""Self-service sign-up pages (HTML, Simplified Chinese first, `?lang=en`; the one language rule of every page):
`/subscribe` (the form, then the
verification page), `/subscribe/verify` (the SMS code), `/subscribe/resend` (a new code) and
`/subscribe/confirm/{token}` (the emailed link: GET shows a button, only the POST confirms, so that link scanners
that fetch every URL in a mail confirm nothing).

Handlers check the form's CSRF field, read the form, call `notifier.verification`, and render the answer. Over a
limit the answer is a 429 page with `Retry-After`, and nothing was created or sent.
"""

from __future__ import annotations

import math
from typing import Any

from aiohttp import web

from notifier import limits, tokens, verification
from notifier.errors import InvalidInput
from notifier.i18n import LANGS, N_, LangChoice, gettext_in, translator
from notifier.verification import CHANNEL_ORDER, CONSENT_VERSION, CodeSender, RateLimited
from notifier.web.citizen.consent import consent_text
from notifier.web.citizen.subscribe_form import ERRORS, FormValues, Known, ParsedForm, read_form
from notifier.web.citizen.subscribe_pages import HTML, csrf_ok, message_page, render, request_lang
from notifier.web.clients import client_of
from notifier.web.openapi import operation
from notifier.web.problems import read_form_body
from notifier.web.state import METRICS, SERVICE
from notifier.wechat_qr import scene_qr_url
from subscriptions.masking import mask_email, mask_mobile

routes = web.RouteTableDef()

TAG = "citizen"
FORM_DOC = ("Form fields (application/x-www-form-urlencoded): `csrf` (from the page), `lang`, `topic`… , `region`, "
            "`group`…, `channel`… (wechat, sms, email), `locale`, `quiet_start`, `quiet_end` (HH:MM), `mobile`, "
            "`email`, `consent` (the consent text version). ")


def _field(form: Any, name: str) -> str | None:
    value = form.get(name)
    return value if isinstance(value, str) else None


def available_channels(request: web.Request) -> list[str]:
    """The self-service channels this deployment can verify: SMS only with a verification template."""
    service = request.app[SERVICE]
    sms_ok = (isinstance(service.channels.get("sms"), CodeSender)
              and bool(service.settings.channels.get("sms", {}).get("verification_template_code")))
    return [kind for kind in CHANNEL_ORDER if kind in service.channels and (kind != "sms" or sms_ok)]


def _name(row: Any, lang: str) -> str:
    return str(row["name_en"] or row["name"]) if lang == "en" else str(row["name"])


async def _choices(request: web.Request, lang: str) -> dict[str, Any]:
    """Topics grouped by domain, regions and groups, from the catalogue in the database, named in `lang`."""
    service = request.app[SERVICE]
    store = service.store
    topics = await store.list_topics()
    # In the catalogue's own order (the seed's order of domains), domains added later after them by code.
    rank = {d.code: i for i, d in enumerate(service.catalogue.domains)}
    domains = []
    for row in sorted(await store.list_domains(), key=lambda r: (rank.get(r["code"], len(rank)), r["code"])):
        listed = [{"key": t["key"], "name": (t.get("name_en") or t["name"]) if lang == "en" else t["name"]}
                  for t in topics if t["domain"] == row["code"]]
        if listed:
            domains.append({"name": _name(row, lang), "topics": listed})
    return {"domains": domains,
            "regions": [{"code": r["code"], "name": _name(r, lang)} for r in await store.list_regions()],
            "groups": [{"code": g["code"], "name": _name(g, lang)} for g in await store.list_groups()]}


def _known(choices: dict[str, Any]) -> Known:
    return Known(topics={t["key"] for d in choices["domains"] for t in d["topics"]},
                 regions={r["code"] for r in choices["regions"]}, groups={g["code"] for g in choices["groups"]})


def _form_page(request: web.Request, lang: LangChoice, choices: dict[str, Any], values: FormValues,
               errors: dict[str, str], *, status: int = 200) -> web.Response:
    return render(request, "subscribe_form.html", lang=lang, status=status, switch=request.method == "GET",
                  channels=available_channels(request), locales=LANGS, values=values, errors=errors,
                  consent_text=consent_text(CONSENT_VERSION, lang.lang), consent_version=CONSENT_VERSION,
                  **choices)


def forbidden(request: web.Request, lang: LangChoice, *, area: str = "subscribe") -> web.Response:
    """The 403 page of a form whose CSRF field does not match its cookie."""
    return message_page(request, lang=lang, status=403, area=area, title_key=N_("This page has expired"),
                        body=gettext_in(lang.lang, "The form has expired or could not be confirmed as coming from "
                                                   "this site. Please go back and submit it again."))


async def checked_post(request: web.Request, area: str = "subscribe") -> tuple[LangChoice, Any] | web.Response:
    """(language, form) of a POST whose CSRF field matches its cookie, or the 403 page to answer with."""
    form = await read_form_body(request)
    lang = request_lang(request, _field(form, "lang"))
    if not csrf_ok(request, _field(form, "csrf"), area):
        return forbidden(request, lang, area=area)
    return lang, form


def _limit_text(lang: str, scope: str, minutes: int) -> str:
    """What a citizen over a limit is told, by the limit's scope (`RateLimited.scope`, `notifier.limits`)."""
    tr = translator(lang)
    if scope == limits.SCOPE_SMS:
        text = tr.ngettext(
            "This number has had as many codes as allowed (1 a minute, 5 a day). Please try again in about "
            "%(num)d minute.",
            "This number has had as many codes as allowed (1 a minute, 5 a day). Please try again in about "
            "%(num)d minutes.", minutes)
    elif scope == limits.SCOPE_EMAIL:
        text = tr.ngettext(
            "This address has had as many emails as allowed (1 a minute, 5 a day). Please try again in about "
            "%(num)d minute.",
            "This address has had as many emails as allowed (1 a minute, 5 a day). Please try again in about "
            "%(num)d minutes.", minutes)
    elif scope == limits.SCOPE_ALL:
        text = tr.ngettext("The service is sending as many codes as it can just now. Please try again in about "
                           "%(num)d minute.",
                           "The service is sending as many codes as it can just now. Please try again in about "
                           "%(num)d minutes.", minutes)
    else:
        text = tr.ngettext("Too many codes were asked for from your network (5 an hour). Please try again in about "
                           "%(num)d minute.",
                           "Too many codes were asked for from your network (5 an hour). Please try again in about "
                           "%(num)d minutes.", minutes)
    return text % {"num": minutes}


def limited(request: web.Request, lang: LangChoice, exc: RateLimited, *, area: str = "subscribe") -> web.Response:
    """The 429 page of a verification limit (sign-up, resend, /manage), counted in /metrics."""
    request.app[METRICS].count_limited(exc.scope)
    return message_page(request, lang=lang, status=429, title_key=N_("Too many requests"),
                        body=_limit_text(lang.lang, exc.scope, math.ceil(exc.retry_after / 60)),
                        headers={"Retry-After": str(exc.retry_after)}, area=area)


INVALID_TITLE = N_("This link is not valid")


def _invalid_link(request: web.Request, lang: LangChoice) -> web.Response:
    return message_page(request, lang=lang, status=404, title_key=INVALID_TITLE,
                        body=gettext_in(lang.lang, "The link is not valid, was already used, or is older than 24 "
                                                   "hours. Please subscribe again."))


def _done(request: web.Request, lang: LangChoice, subscriber_id: str, *, manage: bool = True) -> web.Response:
    """The success page; with the manage link only for whoever just proved the contact."""
    manage_url = None
    if manage:
        token = tokens.make_token(request.app[SERVICE].secret, tokens.MANAGE, subscriber_id)
        manage_url = f"/manage/{token}?lang={lang.lang}"
    return render(request, "subscribe_done.html", lang=lang, manage_url=manage_url)


def _check_page(request: web.Request, lang: LangChoice, ref: str, *, sms: dict[str, Any] | None = None,
                email: dict[str, Any] | None = None, wechat: dict[str, Any] | None = None,
                status: int = 200) -> web.Response:
    return render(request, "subscribe_check.html", lang=lang, status=status, ref=ref, sms=sms, email=email,
                  wechat=wechat)


# ---------------------------------------------------------------- the form



@routes.get("/subscribe")
@operation("Citizen sign-up: the subscription form", TAG, {200: ("an HTML page", None)}, auth=False,
           media_type=HTML, description="Topics by domain, district, groups, channels, language, quiet hours, "
                                        "contacts and the consent text (versioned). `?lang=en` for English.")
async def subscribe_form(request: web.Request) -> web.StreamResponse:
    lang = request_lang(request)
    return _form_page(request, lang, await _choices(request, lang.lang), FormValues(locale=lang.lang), {})


@routes.post("/subscribe")
@operation("Citizen sign-up: submit the form", TAG,
           {200: ("the verification page: code form, email notice, WeChat QR", None)}, auth=False,
           media_type=HTML, errors=(403, 422, 429),
           description=FORM_DOC + "Creates a pending subscriber (nothing is sent to it until a contact is "
                                  "verified), records consent, texts a 6-digit code and/or emails a link. 403 "
                                  "without a valid CSRF field; 422 (the form again, with errors); 429 with "
                                  "Retry-After over a verification limit: per client, number "
                                  "or address, or service-wide (nothing created or sent).")
async def subscribe_submit(request: web.Request) -> web.StreamResponse:
    posted = await checked_post(request)
    if isinstance(posted, web.Response):
        return posted
    lang, form = posted
    choices = await _choices(request, lang.lang)
    parsed = read_form(form, _known(choices), available_channels(request), lang.lang)
    if parsed.body is None:
        return _form_page(request, lang, choices, parsed.values, parsed.errors, status=422)
    try:
        return await _sign_up(request, lang, parsed)
    except RateLimited as exc:
        return limited(request, lang, exc)
    except verification.VerificationUnavailable:
        errors = {"channels": ERRORS["channels_unavailable"]}
    except InvalidInput:
        errors = {"form": ERRORS["form"]}
    return _form_page(request, lang, choices, parsed.values, errors, status=422)


async def _sign_up(request: web.Request, lang: LangChoice, parsed: ParsedForm) -> web.Response:
    service = request.app[SERVICE]
    assert parsed.body is not None  # noqa: S101 - checked by the caller
    signup = await verification.sign_up(service.store, service.channels, secret=service.secret,
                                        public_url=service.settings.server.base_url(), body=parsed.body,
                                        wants_wechat=parsed.wants_wechat, client=client_of(request),
                                        hourly_cap=service.settings.verification.hourly_cap)
    contacts = parsed.body.contacts
    sms = email = wechat = None
    if contacts.sms:
        sms = {"sent": bool(signup.sms_sent), "note": CODE_SENT if signup.sms_sent else CODE_NOT_SENT,
               "error": None, "mobile": mask_mobile(contacts.sms)}
    if contacts.email:
        email = {"sent": bool(signup.email_sent), "address": mask_email(contacts.email)}
    if signup.wechat_scene:
        wechat = {"scene": signup.wechat_scene,
                  "qr_url": await scene_qr_url(service.channels.get("wechat"), service.http, signup.wechat_scene)}
    return _check_page(request, lang, signup.reference, sms=sms, email=email, wechat=wechat)


# ---------------------------------------------------------------- the SMS code

CODE_SENT = N_("A code was sent to %(mobile)s; it is valid for 10 minutes.")
CODE_RESENT = N_("A new code was sent; the previous one no longer works.")
CODE_NOT_SENT = N_("The code could not be sent just now; please press \"Send a new code\" in a moment.")
# Why a code was not accepted, by `verification.check_code`'s outcome.
CODE_OUTCOMES = {
    verification.WRONG: N_("That code is not right; please try again."),
    verification.LOCKED: N_("Too many wrong tries: this code no longer works. Please ask for a new code."),
    verification.EXPIRED: N_("The code has expired; please ask for a new one."),
    verification.MISSING: N_("There is no code waiting; please ask for a new one."),
}


async def _pending(request: web.Request) -> tuple[LangChoice, Any, str | None] | web.Response:
    """(lang, form, subscriber id of the form's `ref`) after the CSRF check, or the refusal page."""
    posted = await checked_post(request)
    if isinstance(posted, web.Response):
        return posted
    lang, form = posted
    secret = request.app[SERVICE].secret
    return lang, form, verification.read_reference(secret, _field(form, "ref") or "")


async def _masked_mobile(request: web.Request, subscriber_id: str) -> str:
    record = await request.app[SERVICE].store.get_subscriber(subscriber_id)
    phone = record.contacts.get("sms") if record else None
    return mask_mobile(phone) if phone else ""


@routes.post("/subscribe/verify")
@operation("Citizen sign-up: enter the SMS code", TAG, {200: ("confirmed: the subscription is active", None)},
           auth=False, media_type=HTML, errors=(403, 404, 422),
           description="Form fields `csrf`, `lang`, `ref` (from the verification page) and `code` (6 digits). "
                       "A right code verifies the mobile and activates the subscriber; 5 wrong codes lock it "
                       "(ask for a new one); codes expire after 10 minutes. 422 shows the page again with why.")
async def subscribe_verify(request: web.Request) -> web.StreamResponse:
    pending = await _pending(request)
    if isinstance(pending, web.Response):
        return pending
    lang, form, subscriber_id = pending
    if subscriber_id is None:
        return _invalid_link(request, lang)
    service = request.app[SERVICE]
    outcome, holder = await verification.check_code(service.store, service.secret, subscriber_id,
                                                    _field(form, "code") or "")
    if outcome == verification.VERIFIED:
        return _done(request, lang, holder)  # a repeat sign-up merged: the page of the subscriber it joined
    if outcome == verification.MISSING and (await service.store.contact_states(subscriber_id)).get("sms"):
        # Already verified (a second tap on the button): the first answer carried the manage link; the reference
        # alone does not prove the contact, so this one does not.
        return _done(request, lang, subscriber_id, manage=False)
    sms = {"sent": False, "note": None, "error": CODE_OUTCOMES.get(outcome, CODE_OUTCOMES[verification.WRONG]),
           "mobile": await _masked_mobile(request, subscriber_id)}
    return _check_page(request, lang, _field(form, "ref") or "", sms=sms, status=422)


@routes.post("/subscribe/resend")
@operation("Citizen sign-up: text a new code", TAG, {200: ("the verification page, with the new code sent", None)},
           auth=False, media_type=HTML, errors=(403, 404, 429),
           description="Form fields `csrf`, `lang`, `ref`. The previous code stops working. Limited like "
                       "every code: per client (5 an hour), per number (1 a minute, 5 a day) and service-wide "
                       "(`[verification] hourly_cap`); 429 with Retry-After, and no SMS, over a limit.")
async def subscribe_resend(request: web.Request) -> web.StreamResponse:
    pending = await _pending(request)
    if isinstance(pending, web.Response):
        return pending
    lang, form, subscriber_id = pending
    if subscriber_id is None:
        return _invalid_link(request, lang)
    service = request.app[SERVICE]
    try:
        sent = await verification.resend_code(service.store, service.channels, secret=service.secret,
                                              subscriber_id=subscriber_id, client=client_of(request),
                                              hourly_cap=service.settings.verification.hourly_cap)
    except RateLimited as exc:
        return limited(request, lang, exc)
    if sent is None:
        return message_page(request, lang=lang, status=404, title_key=INVALID_TITLE,
                            body=gettext_in(lang.lang, "This mobile number is already confirmed, or the "
                                                       "subscription no longer exists."))
    sms = {"sent": sent, "note": CODE_RESENT if sent else CODE_NOT_SENT, "error": None,
           "mobile": await _masked_mobile(request, subscriber_id)}
    return _check_page(request, lang, _field(form, "ref") or "", sms=sms)


# ---------------------------------------------------------------- the email link


@routes.get("/subscribe/confirm/{token}")
@operation("Citizen sign-up: the emailed confirmation link", TAG, {200: ("a page with a confirm button", None)},
           auth=False, media_type=HTML, errors=(404,),
           description="Shows a button only: the address is confirmed by the POST, never by opening the link "
                       "(mail scanners fetch links). 404 for a forged or expired (24 h) link.")
async def subscribe_confirm_page(request: web.Request) -> web.StreamResponse:
    lang = request_lang(request)
    if verification.read_email_token(request.app[SERVICE].secret, request.match_info["token"]) is None:
        return _invalid_link(request, lang)
    return render(request, "subscribe_confirm.html", lang=lang, switch=True, action=request.path)


@routes.post("/subscribe/confirm/{token}")
@operation("Citizen sign-up: confirm the email address", TAG, {200: ("confirmed: the subscription is active", None)},
           auth=False, media_type=HTML, errors=(403, 404),
           description="Form fields `csrf` and `lang` (from the confirm page). Verifies the email contact and "
                       "activates the subscriber; 404 for a forged or expired link or a changed address.")
async def subscribe_confirm(request: web.Request) -> web.StreamResponse:
    posted = await checked_post(request)
    if isinstance(posted, web.Response):
        return posted
    lang, _ = posted
    service = request.app[SERVICE]
    subscriber_id = await verification.confirm_email(service.store, service.secret, request.match_info["token"])
    if subscriber_id is None:
        return _invalid_link(request, lang)
    return _done(request, lang, subscriber_id)
