"""The one page environment every audience renders its HTML with, and the one way a page picks its language.

Templates live beside their audience's code (`admin/pages/`, `citizen/pages/`, `public/pages/`) and are named
with that prefix (`admin/alert.html`, `citizen/manage/manage.html`, `public/detail.html`). The environment is an
autoescaping Jinja2 environment (never the sandboxed message renderer) with `jinja2.ext.i18n`: `_()`,
`pgettext()`, `ngettext()` and `{% trans %}` read the one gettext catalogue (`notifier.i18n`) in the language of
the page being rendered, which is the `lang` every render passes. Shared terms (severity, level, channel, status…)
come from `terms`, a `notifier.terms.Terms` in that language; `when(moment)` writes a time as readers of that
language do; the filters `stamp` (to the second), `iso` and `pct` format times and shares alike in every language.
Every translated string is a `%`-format (a literal percent sign is written `%%`): newstyle gettext formats every
string it returns.

The language: `?lang=` (or a form's `lang` field), then the `notifier_lang` cookie, then what the page knows of
its reader (a subscriber's own language), then Accept-Language, then Chinese (`notifier.i18n.pick_lang`). An
explicit choice is remembered in the cookie by the pages that may set one (`remember_lang`; not the public
column, whose pages shared caches keep).
"""

from __future__ import annotations

import base64
import hashlib
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import cache
from importlib.resources import files
from typing import Any
from urllib.parse import urlencode

import jinja2
from aiohttp import web
from jinja2 import pass_context
from jinja2.runtime import Context
from markupsafe import Markup

from notifier.i18n import ENDONYMS, LangChoice, other_lang, pick_lang, translator
from notifier.rendering import LOCAL_TZ
from notifier.terms import Terms
from notifier.web.state import SERVICE

AUDIENCES = ("admin", "citizen", "public")
BASE_CSS = "base.css"  # what every page's stylesheet starts with
LANG_COOKIE = "notifier_lang"
LANG_COOKIE_AGE = 365 * 86400


def _lang(context: Context) -> str:
    """The language of the page being rendered: every render passes `lang` (StrictUndefined if one did not)."""
    return str(context["lang"])


@pass_context
def _gettext(context: Context, message: str) -> str:
    return translator(_lang(context)).gettext(message)


@pass_context
def _ngettext(context: Context, singular: str, plural: str, n: int) -> str:
    return translator(_lang(context)).ngettext(singular, plural, n)


@pass_context
def _pgettext(context: Context, msgctxt: str, message: str) -> str:
    return translator(_lang(context)).pgettext(msgctxt, message)


@pass_context
def _npgettext(context: Context, msgctxt: str, singular: str, plural: str, n: int) -> str:
    return translator(_lang(context)).npgettext(msgctxt, singular, plural, n)


def _local(value: float | datetime) -> datetime:
    moment = value if isinstance(value, datetime) else datetime.fromtimestamp(value, UTC)
    return (moment if moment.tzinfo else moment.replace(tzinfo=UTC)).astimezone(LOCAL_TZ)


@pass_context
def _when(context: Context, value: float | datetime | None) -> str:
    """A moment as readers of the page's language write it (Asia/Shanghai); the empty mark for none."""
    terms = Terms(_lang(context))
    return terms.nothing if value is None else terms.when(_local(value), LOCAL_TZ)


def _stamp(value: float | datetime | None) -> str:
    """A moment to the second (Asia/Shanghai), the same in every language: operators compare these."""
    return "—" if value is None else _local(value).strftime("%Y-%m-%d %H:%M:%S")


def _iso(value: float | datetime) -> str:
    return _local(value).isoformat(timespec="seconds")


def percent(rate: float | None, na: str = "—") -> str:
    """A share as a percentage with one decimal ("—" when there is none, e.g. nobody targeted)."""
    return na if rate is None else f"{rate * 100:.1f}%"


@dataclass(frozen=True, slots=True)
class Stylesheet:
    """A page's stylesheet (web/base.css, then the audience's own) and its CSP source for inlining it by hash."""

    text: str
    csp_hash: str

    @property
    def inline(self) -> Markup:
        return Markup(self.text)  # noqa: S704 - our own stylesheet files, not input


@cache
def stylesheet(package: str, name: str) -> Stylesheet:
    """The shared base sheet followed by `name` from `package` (read once per process)."""
    text = (files("notifier.web").joinpath(BASE_CSS).read_text(encoding="utf-8") + "\n"
            + files(package).joinpath(name).read_text(encoding="utf-8"))
    digest = base64.b64encode(hashlib.sha256(text.encode("utf-8")).digest()).decode()
    return Stylesheet(text, f"'sha256-{digest}'")


@cache
def environment() -> jinja2.Environment:
    """Every audience's templates in one environment (built once per process; pages do not change under a
    running service)."""
    loader = jinja2.PrefixLoader({name: jinja2.PackageLoader(f"notifier.web.{name}", "pages") for name in AUDIENCES})
    env = jinja2.Environment(loader=loader, autoescape=True, undefined=jinja2.StrictUndefined, trim_blocks=True,
                             lstrip_blocks=True, auto_reload=False, extensions=["jinja2.ext.i18n"])
    # install_gettext_callables is added to the environment by the i18n extension (hence the ignore).
    env.install_gettext_callables(  # type: ignore[attr-defined]
        gettext=_gettext, ngettext=_ngettext, pgettext=_pgettext, npgettext=_npgettext, newstyle=True)
    env.globals["when"] = _when
    env.filters.update(stamp=_stamp, iso=_iso, pct=percent)
    return env


def render_text(template: str, lang: str, **context: Any) -> str:
    """A page's HTML in `lang`: the template sees `lang`, `other_lang`, `endonym` (the other language's own name,
    for the switch link), `terms` and whatever the caller passes."""
    other = other_lang(lang)
    return environment().get_template(template).render(lang=lang, other_lang=other, endonym=ENDONYMS[other],
                                                       terms=Terms(lang), **context)


def page_lang(request: web.Request, *, chosen: str | None = None, preferred: str | None = None) -> LangChoice:
    """The request's language by the one rule; `chosen` is a POST form's `lang` field (else `?lang=` counts)."""
    return pick_lang(chosen=chosen if chosen is not None else request.query.get("lang"),
                     remembered=request.cookies.get(LANG_COOKIE), preferred=preferred,
                     accept_language=request.headers.get("Accept-Language"))


def switch_url(request: web.Request, lang: str, *, drop: tuple[str, ...] = ()) -> str:
    """This page in the other language (the query kept, minus `drop`)."""
    query = {k: v for k, v in request.query.items() if k != "lang" and k not in drop}
    query["lang"] = other_lang(lang)
    return f"{request.path}?{urlencode(query)}"


def secure(request: web.Request) -> bool:
    """Whether cookies must be Secure: the service is published over https."""
    return (request.app[SERVICE].settings.server.public_url or "").lower().startswith("https://")


def remember_lang(request: web.Request, response: web.StreamResponse, choice: LangChoice) -> None:
    """Keep an explicit choice for the reader's next pages (every audience reads the cookie). Only a language
    tag is stored: it says nothing about who the reader is."""
    if choice.explicit and request.cookies.get(LANG_COOKIE) != choice.lang:
        response.set_cookie(LANG_COOKIE, choice.lang, path="/", max_age=LANG_COOKIE_AGE, httponly=True,
                            samesite="Lax", secure=secure(request))
