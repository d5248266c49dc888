"""How the sign-up pages answer: templates from `citizen/pages/subscribe/*.html` rendered by an autoescaping Jinja2
environment of their own (never the sandboxed message renderer), the security headers they carry, and the CSRF
check of their forms.

CSRF: a random nonce in an HttpOnly, SameSite=Strict cookie scoped to /subscribe, and in every form a hidden
`csrf` field that is the HMAC of that nonce with the server secret. A POST whose field does not match its cookie
is refused (403): another site can neither read the cookie nor forge the field. Nothing is kept server-side.

The stylesheet is inlined and allowed by its hash in the Content Security Policy; nothing runs and nothing loads
from elsewhere except, when WeChat binding shows one, the QR image from WeChat's own host. Pages are never cached.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
from functools import cache
from importlib.resources import files
from typing import Any
from urllib.parse import urlencode

import jinja2
from aiohttp import web
from markupsafe import Markup

from notifier.web.citizen.subscribe_i18n import pick_lang, translator
from notifier.web.state import SERVICE

HTML = "text/html"
CSRF_COOKIE = "notifier_subscribe"
COOKIE_PATH = "/subscribe"
WECHAT_QR_HOST = "https://mp.weixin.qq.com"
_CSS = "pages/subscribe/subscribe.css"


@cache
def _css() -> tuple[Markup, str]:
    text = files("notifier.web.citizen").joinpath(_CSS).read_text(encoding="utf-8")
    digest = base64.b64encode(hashlib.sha256(text.encode("utf-8")).digest()).decode()
    return Markup(text), f"'sha256-{digest}'"  # noqa: S704 - our own stylesheet file, not input


@cache
def environment() -> jinja2.Environment:
    """The sign-up pages' templates (built once per process)."""
    return jinja2.Environment(loader=jinja2.PackageLoader("notifier.web.citizen", "pages/subscribe"), autoescape=True,
                              undefined=jinja2.StrictUndefined, trim_blocks=True, lstrip_blocks=True,
                              auto_reload=False)


def page_headers() -> dict[str, str]:
    policy = (f"default-src 'none'; style-src {_css()[1]}; img-src 'self' {WECHAT_QR_HOST}; form-action 'self'; "
              "base-uri 'none'; frame-ancestors 'none'")
    return {"Content-Security-Policy": policy, "X-Content-Type-Options": "nosniff", "Cache-Control": "no-store",
            "Referrer-Policy": "no-referrer", "X-Frame-Options": "DENY"}


def secure(request: web.Request) -> bool:
    return (request.app[SERVICE].settings.server.public_url or "").lower().startswith("https://")


# ---------------------------------------------------------------- CSRF


def _csrf_field(secret: str, nonce: str) -> str:
    return hmac.new(secret.encode(), b"subscribe-csrf\x00" + nonce.encode(), hashlib.sha256).hexdigest()[:32]


def csrf_nonce(request: web.Request) -> str:
    """The browser's nonce (from its cookie), or a new one that `render` will set."""
    nonce = request.cookies.get(CSRF_COOKIE, "")
    return nonce if 20 <= len(nonce) <= 64 and nonce.isascii() else secrets.token_urlsafe(24)


def csrf_ok(request: web.Request, given: str | None) -> bool:
    """Whether a POST's `csrf` field matches the nonce in its cookie (constant time; a missing one never does)."""
    nonce = request.cookies.get(CSRF_COOKIE)
    if not nonce or not given:
        return False
    expected = _csrf_field(request.app[SERVICE].secret, nonce)
    return hmac.compare_digest(expected.encode(), given.encode("utf-8", "replace"))


# ---------------------------------------------------------------- rendering


def request_lang(request: web.Request, form_lang: str | None = None) -> str:
    return pick_lang(form_lang, request.query.get("lang"))


def render(request: web.Request, template: str, *, lang: str, status: int = 200, switch: bool = False,
           headers: dict[str, str] | None = None, **context: Any) -> web.Response:
    """A page in `lang` with a fresh CSRF field; `switch` offers the other language (GET pages only)."""
    nonce = csrf_nonce(request)
    other = "en" if lang == "zh-CN" else "zh-CN"
    query = {k: v for k, v in request.query.items() if k != "lang"} | {"lang": other}
    page = environment().get_template(template).render(
        t=translator(lang), lang=lang, css=_css()[0], other_lang=other,
        switch_url=f"{request.path}?{urlencode(query)}" if switch else None,
        csrf=_csrf_field(request.app[SERVICE].secret, nonce), **context)
    response = web.Response(text=page, content_type=HTML, charset="utf-8", status=status,
                            headers={**page_headers(), **(headers or {})})
    if request.cookies.get(CSRF_COOKIE) != nonce:
        response.set_cookie(CSRF_COOKIE, nonce, path=COOKIE_PATH, httponly=True, samesite="Strict",
                            secure=secure(request))
    return response


def message_page(request: web.Request, *, lang: str, status: int, title_key: str, body_key: str,
                 headers: dict[str, str] | None = None, **values: object) -> web.Response:
    """A page that only says something (expired form, invalid link, a limit reached), with a way back."""
    return render(request, "subscribe_message.html", lang=lang, status=status, headers=headers,
                  title_key=title_key, body=translator(lang)(body_key, **values))
