"""How the public column answers: pages rendered from `public/pages/*.html` by an autoescaping Jinja2 environment
of its own (never the sandboxed message renderer), the security headers they carry, and caching (ETag,
Last-Modified, `Cache-Control: public, max-age=60`, 304 on a matching conditional request).

The stylesheet is inlined and allowed by its hash in the Content Security Policy: nothing runs, nothing loads
from elsewhere, and the page needs no second request (citizens read these on slow mobile connections).
"""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Mapping
from datetime import UTC, datetime
from email.utils import format_datetime
from functools import cache
from importlib.resources import files
from typing import Any
from urllib.parse import urlencode

import jinja2
from aiohttp import web
from markupsafe import Markup

from notifier.rendering import LOCAL_TZ
from notifier.web.public.i18n import pick_lang, translator
from notifier.web.state import SERVICE

HTML = "text/html"
MAX_AGE = 60
# Feeds and JSON are open data: any site may read them from a browser (no credentials are ever involved).
DATA_HEADERS = {"X-Content-Type-Options": "nosniff", "Access-Control-Allow-Origin": "*"}
_STATIC = "pages/public.css"


@cache
def _css() -> tuple[Markup, str]:
    text = files("notifier.web.public").joinpath(_STATIC).read_text(encoding="utf-8")
    digest = base64.b64encode(hashlib.sha256(text.encode("utf-8")).digest()).decode()
    return Markup(text), f"'sha256-{digest}'"  # noqa: S704 - our own stylesheet file, not input


@cache
def environment() -> jinja2.Environment:
    """The public pages' templates (built once per process; templates do not change under a running service)."""
    env = jinja2.Environment(loader=jinja2.PackageLoader("notifier.web.public", "pages"), autoescape=True,
                             undefined=jinja2.StrictUndefined, trim_blocks=True, lstrip_blocks=True,
                             auto_reload=False)
    env.filters["iso"] = lambda value: _local(value).isoformat(timespec="seconds")
    return env


def page_headers() -> dict[str, str]:
    policy = (f"default-src 'none'; style-src {_css()[1]}; img-src 'self'; form-action 'self'; base-uri 'none'; "
              "frame-ancestors 'none'")
    return {"Content-Security-Policy": policy, "X-Content-Type-Options": "nosniff",
            "Referrer-Policy": "strict-origin-when-cross-origin"}


def _local(value: datetime) -> datetime:
    return (value if value.tzinfo else value.replace(tzinfo=UTC)).astimezone(LOCAL_TZ)


def lang_of(request: web.Request) -> str:
    return pick_lang(request.query.get("lang"))


def base_url(request: web.Request) -> str:
    """`[server] public_url` (or http://host:port): the base of every absolute link."""
    return request.app[SERVICE].settings.server.base_url()


def link(path: str, lang: str, params: Mapping[str, str | int] | None = None) -> str:
    """A site-relative link that keeps the page language."""
    query: dict[str, str | int] = dict(params or {})
    if lang != "zh-CN":
        query["lang"] = lang
    return f"{path}?{urlencode(query)}" if query else path


def render_page(request: web.Request, template: str, *, status: int = 200, last_modified: float | None = None,
                **context: Any) -> web.Response:
    """A page in the request's language, cacheable when it is a 200."""
    lang = lang_of(request)
    t = translator(lang)
    other = "en" if lang == "zh-CN" else "zh-CN"
    switch = {k: v for k, v in request.query.items() if k != "lang"}
    switch["lang"] = other
    page = environment().get_template(template).render(
        t=t, lang=lang, other_lang=other, css=_css()[0], switch_url=f"{request.path}?{urlencode(switch)}",
        href=lambda path, **params: link(path, lang, params),
        when=lambda value: _local(value).strftime(t("datetime")) if value else t("none"), **context)
    return respond(request, page.encode("utf-8"), HTML, status=status, last_modified=last_modified,
                   headers=page_headers())


def not_found(request: web.Request, body_key: str = "not_found.body") -> web.Response:
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
