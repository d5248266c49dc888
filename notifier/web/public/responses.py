"""How the public column answers: pages rendered from `public/pages/*.html` by the shared page environment
(`notifier.web.pages`), the security headers they carry, and caching (ETag, Last-Modified, `Cache-Control:
public, max-age=60`, 304 on a matching conditional request).

The language follows the one rule of every page. A page whose URL names its language (`?lang=`, which every
link of the column keeps) is the same for everyone; one that does not depends on the reader's cookie and
Accept-Language, and says so (`Vary`), so shared caches keep a copy per language. Public pages are shared-cacheable,
so they never set the language cookie; they only read it.

The stylesheet is inlined and allowed by its hash in the Content Security Policy: nothing runs, nothing loads
from elsewhere, and the page needs no second request (citizens read these on slow mobile connections).
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from datetime import UTC, datetime
from email.utils import format_datetime
from typing import Any
from urllib.parse import urlencode

from aiohttp import web

from notifier.i18n import N_, LangChoice
from notifier.web.pages import Stylesheet, page_lang, render_text, stylesheet, switch_url
from notifier.web.state import SERVICE

HTML = "text/html"
MAX_AGE = 60
# Feeds and JSON are open data: any site may read them from a browser (no credentials are ever involved).
DATA_HEADERS = {"X-Content-Type-Options": "nosniff", "Access-Control-Allow-Origin": "*"}


def _css() -> Stylesheet:
    return stylesheet("notifier.web.public", "pages/public.css")


def page_headers() -> dict[str, str]:
    policy = (f"default-src 'none'; style-src {_css().csp_hash}; img-src 'self'; form-action 'self'; base-uri 'none'; "
              "frame-ancestors 'none'")
    return {"Content-Security-Policy": policy, "X-Content-Type-Options": "nosniff",
            "Referrer-Policy": "strict-origin-when-cross-origin"}


def lang_choice(request: web.Request) -> LangChoice:
    return page_lang(request)


def lang_of(request: web.Request) -> str:
    return lang_choice(request).lang


def language_headers(request: web.Request) -> dict[str, str]:
    """`Vary` for an answer whose language the URL does not name (JSON and feeds carry names in a language too)."""
    return {} if lang_choice(request).explicit else {"Vary": "Accept-Language, Cookie"}


def base_url(request: web.Request) -> str:
    """`[server] public_url` (or http://host:port): the base of every absolute link."""
    return request.app[SERVICE].settings.server.base_url()


def link(path: str, lang: str | None, params: Mapping[str, str | int] | None = None) -> str:
    """A site-relative link that keeps the page language when the reader chose it (`lang`, else None)."""
    query: dict[str, str | int] = dict(params or {})
    if lang:
        query["lang"] = lang
    return f"{path}?{urlencode(query)}" if query else path


def link_lang(request: web.Request) -> str | None:
    """The language links must carry: the one the reader chose in the URL (else the next page decides alike)."""
    choice = lang_choice(request)
    return choice.lang if choice.explicit else None


def render_page(request: web.Request, template: str, *, status: int = 200, last_modified: float | None = None,
                **context: Any) -> web.Response:
    """A page in the request's language, cacheable when it is a 200."""
    lang, keep = lang_of(request), link_lang(request)
    page = render_text(f"public/{template}", lang, css=_css().inline, switch_url=switch_url(request, lang),
                       href=lambda path, **params: link(path, keep, params), **context)
    return respond(request, page.encode("utf-8"), HTML, status=status, last_modified=last_modified,
                   headers={**page_headers(), **language_headers(request)})


SITE = N_("Public-welfare disclosures")  # the column's name (feeds name their author with it)
NO_DISCLOSURE = N_("There is no public disclosure with this id. It may never have been public, or the link is "
                   "wrong.")
NO_TOPIC = N_("There is no such topic.")


def not_found(request: web.Request, body_key: str = NO_DISCLOSURE) -> web.Response:
    return render_page(request, "not_found.html", status=404, section="", body_key=body_key)


def _etag_matches(header: str | None, etag: str) -> bool:
    if not header:
        return False
    if header.strip() == "*":
        return True
    return any(tag.strip().removeprefix("W/") == etag for tag in header.split(","))


def respond(request: web.Request, body: bytes, content_type: str, *, status: int = 200,
            last_modified: float | None = None, headers: Mapping[str, str] | None = None) -> web.Response:
    """The answer with caching headers; 304 when the client's copy is current. Errors are not cached."""
    out = dict(headers or {})
    if status != 200:
        out["Cache-Control"] = "no-store"
        return web.Response(body=body, status=status, content_type=content_type, charset="utf-8", headers=out)
    etag = '"' + hashlib.sha256(body).hexdigest()[:32] + '"'
    out.update({"Cache-Control": f"public, max-age={MAX_AGE}", "ETag": etag})
    modified = None
    if last_modified is not None:
        modified = datetime.fromtimestamp(int(last_modified), UTC)
        out["Last-Modified"] = format_datetime(modified, usegmt=True)
    inm = request.headers.get("If-None-Match")
    since = request.if_modified_since
    if _etag_matches(inm, etag) or (inm is None and modified is not None and since is not None and modified <= since):
        return web.Response(status=304, headers=out)
    return web.Response(body=body, content_type=content_type, charset="utf-8", headers=out)
