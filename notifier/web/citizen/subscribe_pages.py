"""How the sign-up pages answer: templates from `citizen/pages/subscribe/*.html` rendered by the shared page
environment (`notifier.web.pages`), the security headers they carry, and the CSRF check of their forms. The
language follows the one rule of every page (a GET's `?lang=`, a POST's `lang` field), remembered in a cookie.

CSRF: a random nonce in an HttpOnly, SameSite=Strict cookie scoped to the form's area (/subscribe, or /manage for
asking for one's page without a link), and in every form a hidden `csrf` field that is the HMAC of that nonce with
the server secret. A POST whose field does not match its cookie
is refused (403): another site can neither read the cookie nor forge the field. Nothing is kept server-side.

The stylesheet is inlined and allowed by its hash in the Content Security Policy; nothing runs and nothing loads
from elsewhere except, when WeChat binding shows one, the QR image from WeChat's own host. Pages are never cached.
"""

from __future__ import annotations

import hmac
import secrets
from typing import Any

from aiohttp import web

from notifier.i18n import LANGS, LangChoice
from notifier.keyring import keyed_digest
from notifier.web.pages import Stylesheet, page_lang, remember_lang, render_text, secure, stylesheet, switch_url
from notifier.web.state import SERVICE

HTML = "text/html"
CSRF_COOKIE = "notifier_subscribe"
COOKIE_PATH = "/subscribe"
# The forms' areas: (CSRF cookie, its path). /manage (no token) shares these pages and their protection.
AREAS = {"subscribe": (CSRF_COOKIE, COOKIE_PATH), "manage": ("notifier_manage", "/manage")}
WECHAT_QR_HOST = "https://mp.weixin.qq.com"


def _css() -> Stylesheet:
    return stylesheet("notifier.web.citizen", "pages/subscribe/subscribe.css")


def page_headers() -> dict[str, str]:
    policy = (f"default-src 'none'; style-src {_css().csp_hash}; img-src 'self' {WECHAT_QR_HOST}; form-action 'self'; "
              "base-uri 'none'; frame-ancestors 'none'")
    return {"Content-Security-Policy": policy, "X-Content-Type-Options": "nosniff", "Cache-Control": "no-store",
            "Referrer-Policy": "no-referrer", "X-Frame-Options": "DENY"}


# ---------------------------------------------------------------- CSRF


def _csrf_field(secret: str, nonce: str) -> str:
    return keyed_digest(secret, "subscribe-csrf", nonce)[:32]


def csrf_nonce(request: web.Request, area: str = "subscribe") -> str:
    """The browser's nonce (from its cookie), or a new one that `render` will set."""
    nonce = request.cookies.get(AREAS[area][0], "")
    return nonce if 20 <= len(nonce) <= 64 and nonce.isascii() else secrets.token_urlsafe(24)


def csrf_ok(request: web.Request, given: str | None, area: str = "subscribe") -> bool:
    """Whether a POST's `csrf` field matches the nonce in its cookie (constant time; a missing one never does)."""
    nonce = request.cookies.get(AREAS[area][0])
    if not nonce or not given:
        return False
    expected = _csrf_field(request.app[SERVICE].secret, nonce)
    return hmac.compare_digest(expected.encode(), given.encode("utf-8", "replace"))


# ---------------------------------------------------------------- rendering


def request_lang(request: web.Request, form_lang: str | None = None) -> LangChoice:
    """The page language: a POST's `lang` field (the language of the page the form was on: kept, not a new
    choice to remember), else the one rule of every page."""
    if form_lang in LANGS:
        return LangChoice(form_lang, explicit=False)
    return page_lang(request)


def render(request: web.Request, template: str, *, lang: LangChoice, status: int = 200, switch: bool = False,
           headers: dict[str, str] | None = None, area: str = "subscribe", **context: Any) -> web.Response:
    """A page in `lang` with a fresh CSRF field for `area`'s forms; `switch` offers the other language (GET pages
    only)."""
    cookie, path = AREAS[area]
    nonce = csrf_nonce(request, area)
    page = render_text(f"citizen/subscribe/{template}", lang.lang, css=_css().inline,
                       switch_url=switch_url(request, lang.lang) if switch else None,
                       csrf=_csrf_field(request.app[SERVICE].secret, nonce), **context)
    response = web.Response(text=page, content_type=HTML, charset="utf-8", status=status,
                            headers={**page_headers(), **(headers or {})})
    if request.cookies.get(cookie) != nonce:
        response.set_cookie(cookie, nonce, path=path, httponly=True, samesite="Strict", secure=secure(request))
    remember_lang(request, response, lang)
    return response


def message_page(request: web.Request, *, lang: LangChoice, status: int, title_key: str, body: str,
                 headers: dict[str, str] | None = None, area: str = "subscribe") -> web.Response:
    """A page that only says something (expired form, invalid link, a limit reached), with a way back to its
    area's first page: a title (a msgid) and a body already in the page's language."""
    return render(request, "subscribe_message.html", lang=lang, status=status, headers=headers, area=area,
                  title_key=title_key, body=body, back_url=AREAS[area][1])
