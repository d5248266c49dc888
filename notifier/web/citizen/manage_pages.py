"""What the subscriber's own pages (`/manage/<token>`, `/unsubscribe/<token>`) share: rendering
`citizen/pages/manage/` with the shared page environment, the security headers, reading the signed link, and the
form checks. The language follows the one rule of every page, with the subscriber's own message language before
the browser's.

Who may act: whoever holds the link. The token in the path is the credential (signed, expiring, bound to its
purpose); nothing else identifies a subscriber, and no cookie says who anyone is (the only one these pages may set
is the reader's chosen language). A GET never changes anything, so link
scanners and previews that fetch every URL in a message cannot unsubscribe anyone.

Cross-site requests: every POST must come from our own pages or from no browser at all. A browser says where a
request comes from (`Sec-Fetch-Site`, else `Origin`); anything but same-origin is refused. A page's form also
carries a nonce (a signed `form` token bound to the page's link, valid two hours), so a POST is the answer to a
page we served. The one exception is RFC 8058 one-click unsubscribe (`List-Unsubscribe=One-Click`), which mail
providers POST from their servers without a page; it still passes the origin check.

Tokens never reach a log: the access log's lines have the token part of these paths replaced by `…`, and pages
send `Referrer-Policy: same-origin`, so the link does not leak to other sites (and same-origin POSTs still carry
their `Origin`, which `no-referrer` would blank).
"""

from __future__ import annotations

import functools
import hashlib
import secrets
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode, urlsplit

from aiohttp import web

from notifier import tokens
from notifier.i18n import LANGS, N_, LangChoice
from notifier.store.records import SubscriberRecord
from notifier.terms import Terms
from notifier.web.pages import page_lang, remember_lang, render_text, stylesheet, switch_url
from notifier.web.state import SERVICE

HTML = "text/html"
CSP = ("default-src 'none'; style-src 'nonce-{nonce}'; img-src 'none'; form-action 'self'; base-uri 'none'; "
       "frame-ancestors 'none'")
HEADERS = {"X-Content-Type-Options": "nosniff", "Cache-Control": "no-store", "Referrer-Policy": "same-origin",
           "X-Frame-Options": "DENY", "X-Robots-Tag": "noindex"}
_STATUS = {"invalid": 404, "expired": 410, "gone": 404, "form": 403}
# What each problem tells the reader: (title, body) msgids.
_WORDS = {
    "invalid": (N_("Invalid link"),
                N_("This link is invalid or incomplete. Please use the link in your latest message.")),
    "expired": (N_("Link expired"),
                N_("This link has expired. Please use the link in your latest message; by SMS you can also reply TD "
                   "to unsubscribe.")),
    "gone": (N_("Subscription not found"), N_("This subscription cannot be found; it may have been deleted.")),
    "form": (N_("Please submit again"),
             N_("The form expired or came from elsewhere; nothing was changed. Go back and submit again.")),
}


class LinkProblem(Exception):
    """The link cannot be used: `kind` is invalid (404), expired (410), gone (404, subscriber deleted), or the
    form was refused (403: cross-site or without a valid nonce)."""

    def __init__(self, kind: str) -> None:
        super().__init__(kind)
        self.kind = kind
        self.status = _STATUS[kind]
        self.title, self.body = _WORDS[kind]


@dataclass(frozen=True, slots=True)
class Link:
    """A verified link: its raw token and what it says."""

    token: str
    claims: tokens.TokenClaims


def read_link(request: web.Request, purpose: str) -> Link:
    """The path's token, verified for `purpose` with the server secret."""
    token = request.match_info["token"]
    try:
        claims = tokens.read_token(request.app[SERVICE].secret, purpose, token)
    except tokens.ExpiredToken as exc:
        raise LinkProblem("expired") from exc
    except tokens.InvalidToken as exc:
        raise LinkProblem("invalid") from exc
    return Link(token, claims)


async def subscriber_of(request: web.Request, link: Link) -> SubscriberRecord:
    record = await request.app[SERVICE].store.get_subscriber(link.claims.subject)
    if record is None:
        raise LinkProblem("gone")
    return record


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()[:32]


def form_nonce(request: web.Request, link: Link) -> str:
    """The nonce a page's forms carry: bound to this link, valid two hours."""
    return tokens.make_token(request.app[SERVICE].secret, tokens.FORM, link.claims.subject, data=_digest(link.token))


def nonce_ok(request: web.Request, link: Link, nonce: str | None) -> bool:
    try:
        claims = tokens.read_token(request.app[SERVICE].secret, tokens.FORM, nonce or "")
    except tokens.InvalidToken:
        return False
    return claims.subject == link.claims.subject and claims.data == _digest(link.token)


def same_origin(request: web.Request) -> bool:
    """False when a browser says the request comes from another site; True for non-browser clients."""
    site = request.headers.get("Sec-Fetch-Site")
    if site is not None:
        return site in ("same-origin", "none")
    origin = request.headers.get("Origin")
    if origin is None:
        return True
    public = urlsplit(request.app[SERVICE].settings.server.base_url())
    allowed = {f"{public.scheme}://{public.netloc}", f"{request.scheme}://{request.host}"}
    return origin in allowed


def check_post(request: web.Request, link: Link, nonce: str | None) -> None:
    """Refuse a cross-site POST or one without this page's nonce (LinkProblem "form")."""
    if not same_origin(request) or not nonce_ok(request, link, nonce):
        raise LinkProblem("form")


def lang_of(request: web.Request, record: SubscriberRecord | None = None) -> LangChoice:
    """The one rule, with the subscriber's own message language before the browser's."""
    return page_lang(request, preferred=record.locale if record else None)


def here(request: web.Request, suffix: str = "", **query: str) -> str:
    """This page's path (plus `suffix`), keeping an explicit `?lang=`."""
    lang = request.query.get("lang")
    params = {**({"lang": lang} if lang in LANGS else {}), **query}
    return request.path + suffix + (f"?{urlencode(params)}" if params else "")


def render(request: web.Request, template: str, *, lang: LangChoice, status: int = 200,
           **context: Any) -> web.Response:
    """A page in `lang`, with a per-response style nonce and the security headers."""
    nonce = secrets.token_urlsafe(16)
    css = stylesheet("notifier.web.citizen", "pages/manage/manage.css").inline
    page = render_text(f"citizen/manage/{template}", lang.lang, nonce=nonce, css=css,
                       switch_url=switch_url(request, lang.lang, drop=("saved",)), **context)
    response = web.Response(text=page, content_type=HTML, charset="utf-8", status=status,
                            headers={**HEADERS, "Content-Security-Policy": CSP.format(nonce=nonce)})
    remember_lang(request, response, lang)
    return response


def problem_page(request: web.Request, problem: LinkProblem, record: SubscriberRecord | None = None) -> web.Response:
    return render(request, "error.html", lang=lang_of(request, record), status=problem.status,
                  title=problem.title, body=problem.body)


def channel_names(kinds: list[str], lang: str) -> list[str]:
    """The channels' names in `lang` (the page joins them)."""
    terms = Terms(lang)
    return [terms("channel", kind) for kind in kinds]


def guarded(handler: Callable[[web.Request], Awaitable[web.StreamResponse]],
            ) -> Callable[[web.Request], Awaitable[web.StreamResponse]]:
    """Answer an unusable link or a refused form with its page rather than an error."""

    @functools.wraps(handler)
    async def wrapper(request: web.Request) -> web.StreamResponse:
        try:
            return await handler(request)
        except LinkProblem as problem:
            return problem_page(request, problem)

    return wrapper
