"""Languages and their words: the one gettext catalogue every page, export and message reads its text from.

Simplified Chinese first, English second. Source strings (msgids) are English; each language has its own
catalogue, `notifier/locale/<zh_CN|en>/LC_MESSAGES/notifier.po`, compiled beside it to `notifier.mo` (shipped in
the wheel; `python -m notifier.translations` extracts, updates and compiles them, and a test fails when a msgid is
missing, untranslated or stale in either language). Short terms that mean different things in different places
carry a context (`pgettext("severity", "minor")`); the official terms themselves live in `notifier.terms`.

Which language a reader gets is decided once, here, for every page: an explicit choice (`?lang=` or a form's
`lang` field), then the remembered choice (a cookie), then what the page knows of its reader (a subscriber's own
message language), then the browser's Accept-Language, then Chinese.

The command line reads the same catalogue (`Words`, `Said`); its language is `cli_lang`: `--lang`, then
`NOTIFIER_LANG`, then the POSIX locale (`LC_ALL`, `LC_MESSAGES`, `LANG`), then Chinese. In Chinese, the headings
it always printed in both languages keep their English beside them (`Words.beside`).
"""

from __future__ import annotations

import gettext
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path

LANGS = ("zh-CN", "en")
DEFAULT_LANG = "zh-CN"
ENDONYMS = {"zh-CN": "简体中文", "en": "English"}  # each language in its own words (the language switch)
DOMAIN = "notifier"
LOCALE_DIR = Path(__file__).resolve().parent / "locale"
_MAX_ACCEPT_LANGUAGE = 20  # entries of an Accept-Language header looked at; browsers send a handful


def catalogue_locale(lang: str) -> str:
    """The catalogue folder of a language tag: `zh-CN` → `zh_CN` (gettext's spelling)."""
    return lang.replace("-", "_")


def N_(message: str) -> str:
    """Marks a msgid for extraction where the text is translated later, once the language is known."""
    return message


def NP_(context: str, message: str) -> tuple[str, str]:
    """Marks a msgid with its context for extraction; gives (context, msgid) for `Translator.pgettext`."""
    return context, message


class MissingCatalogue(RuntimeError):
    """A supported language has no compiled catalogue: the installation is broken (never a reader's fault)."""


@cache
def translator(lang: str) -> gettext.GNUTranslations:
    """The compiled catalogue of `lang` (a supported language; anything else gets Chinese). Loaded once per
    process: catalogues do not change under a running service. No fallback: a missing catalogue is an error."""
    lang = lang if lang in LANGS else DEFAULT_LANG
    path = LOCALE_DIR / catalogue_locale(lang) / "LC_MESSAGES" / f"{DOMAIN}.mo"
    try:
        with path.open("rb") as fp:
            return gettext.GNUTranslations(fp)
    except OSError as exc:
        raise MissingCatalogue(f"{path}: the compiled {lang} catalogue is missing ({exc.strerror})") from exc


def gettext_in(lang: str, message: str, **values: object) -> str:
    """`message` in `lang`, with `%(name)s` placeholders filled from `values`."""
    text = translator(lang).gettext(message)
    return text % values if values else text


def accepted_languages(header: str | None) -> list[str]:
    """The languages of an Accept-Language header, most wanted first (q=0 and malformed entries dropped)."""
    wanted: list[tuple[float, int, str]] = []
    for position, part in enumerate((header or "").split(",")[:_MAX_ACCEPT_LANGUAGE]):
        tag, _, params = part.strip().partition(";")
        weight = 1.0
        if params.strip().startswith("q="):
            try:
                weight = float(params.strip()[2:])
            except ValueError:
                continue
        if tag and weight > 0:
            wanted.append((-weight, position, tag.strip()))
    return [tag for _, _, tag in sorted(wanted)]


def supported(tag: str | None) -> str | None:
    """The supported language a tag asks for: exact (`en`, `zh-CN`), by region-less prefix (`en-GB` → `en`,
    `zh` / `zh-Hans` / `zh-SG` → `zh-CN`), or None. Traditional Chinese (`zh-TW`, `zh-HK`, `zh-Hant`) is not
    Simplified Chinese; it falls through to the default, which is Simplified Chinese anyway."""
    if not tag:
        return None
    lowered = tag.strip().lower()
    for lang in LANGS:
        if lowered == lang.lower():
            return lang
    primary = lowered.split("-", 1)[0]
    if primary == "en":
        return "en"
    if primary == "zh" and not any(part in ("tw", "hk", "mo", "hant") for part in lowered.split("-")[1:]):
        return "zh-CN"
    return None


@dataclass(frozen=True, slots=True)
class LangChoice:
    """The page language and whether the reader chose it explicitly (then pages may remember it)."""

    lang: str
    explicit: bool


def pick_lang(*, chosen: str | None = None, remembered: str | None = None, preferred: str | None = None,
              accept_language: str | None = None) -> LangChoice:
    """The one language rule: the explicit choice, the remembered one, the reader's own, the browser's, Chinese.
    Only exact language tags count as a choice; the browser's header is matched loosely (`en-GB` → `en`)."""
    if chosen in LANGS:
        return LangChoice(chosen, True)
    for candidate in (remembered, preferred):
        if candidate in LANGS:
            return LangChoice(candidate, False)
    for tag in accepted_languages(accept_language):
        lang = supported(tag)
        if lang is not None:
            return LangChoice(lang, False)
    return LangChoice(DEFAULT_LANG, False)


def other_lang(lang: str) -> str:
    """The language a page's switch offers."""
    return "en" if lang == "zh-CN" else "zh-CN"


# ---------------------------------------------------------------- words outside pages (the command line)

CLI_LANG_VARIABLE = "NOTIFIER_LANG"
LOCALE_VARIABLES = ("LC_ALL", "LC_MESSAGES", "LANG")  # POSIX: the first one set is the locale of messages


class UnsupportedLanguage(ValueError):
    """An explicit language choice (`--lang`, NOTIFIER_LANG) that is not one of LANGS."""


def posix_language(locale: str | None) -> str | None:
    """The supported language of a POSIX locale name: `zh_CN.UTF-8` → zh-CN, `en_GB` → en; `C`, `POSIX` and
    unsupported languages → None."""
    tag = (locale or "").split(".", 1)[0].split("@", 1)[0].replace("_", "-")
    return None if tag in ("", "C", "POSIX") else supported(tag)


def cli_lang(chosen: str | None, environ: Mapping[str, str]) -> str:
    """The command line's language: `--lang`, then NOTIFIER_LANG (both explicit: UnsupportedLanguage when they
    name no supported language), then the locale of messages (the first of LC_ALL, LC_MESSAGES, LANG that is set;
    C, POSIX or another language say nothing), then Chinese."""
    for explicit in (chosen, environ.get(CLI_LANG_VARIABLE)):
        if explicit:
            lang = supported(explicit)
            if lang is None:
                raise UnsupportedLanguage(explicit)
            return lang
    locale = next((environ[name] for name in LOCALE_VARIABLES if environ.get(name)), None)
    return posix_language(locale) or DEFAULT_LANG


@dataclass(frozen=True, slots=True)
class Said:
    """Text to be said later, once the reader's language is known: a msgid of the catalogue (with its context,
    if any) and the values of its `%(name)s` placeholders. A value that is itself `Said` is said in the same
    language. `str()` gives the English (logs, tracebacks)."""

    msgid: str
    values: Mapping[str, object] = field(default_factory=dict)
    context: str | None = None

    @classmethod
    def term(cls, entry: tuple[str, str]) -> Said:
        """A term of `notifier.terms` ((context, msgid))."""
        return cls(entry[1], context=entry[0])

    def in_lang(self, lang: str) -> str:
        t = translator(lang)
        text = t.pgettext(self.context, self.msgid) if self.context else t.gettext(self.msgid)
        return text % {name: value.in_lang(lang) if isinstance(value, Said) else value
                       for name, value in self.values.items()}

    def __str__(self) -> str:
        return self.in_lang("en")


Message = str | tuple[str, str] | Said  # a msgid, a (context, msgid) pair (`NP_`), or text said later


def said(message: Message, values: Mapping[str, object] | None = None) -> Said:
    if isinstance(message, Said):
        return message
    if isinstance(message, tuple):
        return Said(message[1], values or {}, message[0])
    return Said(message, values or {})


class Words:
    """The catalogue in one language for text that is not a page (the command line): `words(msgid, **values)`.
    Msgids are %-formats (a literal percent sign is `%%`); values are filled in after translation."""

    def __init__(self, lang: str) -> None:
        self.lang = lang if lang in LANGS else DEFAULT_LANG

    def __call__(self, message: Message, /, **values: object) -> str:
        return said(message, values).in_lang(self.lang)

    def beside(self, message: Message, /, *, sep: str = " ", **values: object) -> str:
        """Chinese with the English beside it (`覆盖概况 Coverage`; `sep` between them), or the English alone when
        that is the language: for what the command line has always printed in both languages."""
        text = said(message, values)
        here = text.in_lang(self.lang)
        return here if self.lang == "en" else f"{here}{sep}{text.in_lang('en')}"
