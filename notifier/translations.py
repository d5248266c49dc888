"""Keeping the gettext catalogues true: extract every msgid from the code and the pages, update the `.po` files,
compile the `.mo` files, and check that nothing is missing, untranslated, stale or mistyped.

    python -m notifier.translations update   # after changing any user-facing text: extract, merge, compile
    python -m notifier.translations check    # what the test suite checks (exit 1 with the problems)

Msgids are extracted with Babel from `notifier/**.py` (`_`, `gettext`, `ngettext`, `pgettext`, the markers `N_`
and `NP_`, and `gettext_in(lang, msgid)`) and from the pages `notifier/web/*/pages/**.html` (`jinja2.ext.i18n`).
English is the source language: `update` gives a new English entry its msgid as its text (edit it there to change
the English wording without touching the code); a new Chinese entry stays empty until someone translates it, and
`check` fails until then. The compiled catalogues are committed beside their sources, and `check` fails when one
no longer matches its `.po`.
"""

from __future__ import annotations

import re
import sys
from collections.abc import Iterator, Sequence
from pathlib import Path

from babel.messages.catalog import Catalog, Message
from babel.messages.extract import DEFAULT_KEYWORDS, extract_from_dir
from babel.messages.mofile import read_mo, write_mo
from babel.messages.pofile import read_po, write_po

from notifier.i18n import DOMAIN, LANGS, LOCALE_DIR, catalogue_locale

SOURCE_LANG = "en"
PACKAGE_DIR = LOCALE_DIR.parent
METHOD_MAP = [("**.py", "python"), ("web/*/pages/**.html", "jinja2")]
OPTIONS_MAP = {"web/*/pages/**.html": {"extensions": "jinja2.ext.i18n", "trim_blocks": "true",
                                       "lstrip_blocks": "true", "newstyle_gettext": "true"}}
KEYWORDS = {**DEFAULT_KEYWORDS, "NP_": ((1, "c"), 2), "gettext_in": (2,)}
_PLACEHOLDER = re.compile(r"%(?:\((\w+)\))?[-#0 +]*\d*(?:\.\d+)?([sdifr%])")

Key = tuple[str | None, str]  # (msgctxt, msgid)


def po_path(lang: str, locale_dir: Path = LOCALE_DIR) -> Path:
    return locale_dir / catalogue_locale(lang) / "LC_MESSAGES" / f"{DOMAIN}.po"


def extract() -> Catalog:
    """Every msgid the code and the pages use, as a template catalogue."""
    template = Catalog(project="notifier", domain=DOMAIN, fuzzy=False)
    for filename, lineno, message, comments, context in extract_from_dir(
            PACKAGE_DIR, METHOD_MAP, OPTIONS_MAP, keywords=KEYWORDS, strip_comment_tags=True):
        template.add(message, None, [(f"notifier/{filename}", lineno)], auto_comments=comments, context=context)
    return template


def read_catalogue(lang: str, locale_dir: Path = LOCALE_DIR) -> Catalog:
    with po_path(lang, locale_dir).open("rb") as fp:
        return read_po(fp, locale=catalogue_locale(lang), domain=DOMAIN)


def _key(message: Message) -> Key:
    msgid = message.id[0] if isinstance(message.id, tuple | list) else message.id
    return message.context, str(msgid)


def _messages(catalog: Catalog) -> Iterator[Message]:
    return (m for m in catalog if m.id)  # the header entry has an empty msgid


def _fill_from_source(catalog: Catalog) -> None:
    """English is the msgid language: an English entry without text takes its msgid."""
    for message in _messages(catalog):
        if isinstance(message.id, tuple | list):
            if not any(_strings(message)):
                message.string = (message.id[0], *[message.id[1]] * (catalog.num_plurals - 1))
        elif not message.string:
            message.string = message.id
        message.flags.discard("fuzzy")


def update() -> None:
    """Merge the extracted msgids into every language's `.po` (no fuzzy guesses: a changed text is a new entry to
    translate), then compile the `.mo` files."""
    template = extract()
    for lang in LANGS:
        path = po_path(lang)
        if path.exists():
            catalog = read_catalogue(lang)
        else:
            path.parent.mkdir(parents=True, exist_ok=True)
            catalog = Catalog(locale=catalogue_locale(lang), domain=DOMAIN, project="notifier")
        template.creation_date = catalog.creation_date  # the header changes only when a translation does
        catalog.update(template, no_fuzzy_matching=True)
        if lang == SOURCE_LANG:
            _fill_from_source(catalog)
        _header(catalog, lang)
        with path.open("wb") as fp:
            write_po(fp, catalog, width=116, ignore_obsolete=True, include_previous=False, include_lineno=False)
    compile_all()


def _header(catalog: Catalog, lang: str) -> None:
    catalog.fuzzy = False
    catalog.revision_date = catalog.creation_date
    catalog.project, catalog.version = "notifier", "1"
    catalog.copyright_holder = "the notifier authors"
    catalog.msgid_bugs_address = catalog.last_translator = catalog.language_team = "notifier maintainers"
    catalog.header_comment = (f"# The {lang} words of notifier's pages, exports and messages (one catalogue).\n"
                              "# Edit msgstr only; python -m notifier.translations update merges new msgids.")


def compile_all() -> None:
    for lang in LANGS:
        with po_path(lang).with_suffix(".mo").open("wb") as fp:
            write_mo(fp, read_catalogue(lang))


def _placeholders(text: str) -> list[str]:
    return sorted(name or kind for name, kind in _PLACEHOLDER.findall(text) if kind != "%")


def _strings(message: Message) -> list[str]:
    if isinstance(message.string, tuple | list):
        return [str(s) for s in message.string]
    return [str(message.string)]


def _message_problems(lang: str, message: Message, num_plurals: int) -> Iterator[str]:
    key = _key(message)
    strings = _strings(message)
    if "fuzzy" in message.flags or not all(strings) or len(strings) != (num_plurals if message.pluralizable else 1):
        yield f"{lang}: untranslated {key}"
        return
    ids = [str(i) for i in message.id] if isinstance(message.id, tuple | list) else [str(message.id)]
    wanted = _placeholders(ids[-1])
    for text in strings:
        if _placeholders(text) != wanted:
            yield f"{lang}: {key} has placeholders {_placeholders(text)}, the msgid {wanted}"


def _compiled(lang: str, locale_dir: Path) -> dict[Key, list[str]]:
    with po_path(lang, locale_dir).with_suffix(".mo").open("rb") as fp:
        return {_key(m): _strings(m) for m in _messages(read_mo(fp))}


def check(locale_dir: Path = LOCALE_DIR) -> list[str]:
    """Every problem of the catalogues: msgids used but not in a language, entries no longer used, untranslated or
    fuzzy entries, placeholders that differ from the msgid's, and compiled catalogues that differ from their
    sources (`locale_dir`: the shipped catalogues unless a test points elsewhere)."""
    used = {_key(m) for m in _messages(extract())}
    problems: list[str] = []
    for lang in LANGS:
        path = po_path(lang, locale_dir)
        if not path.exists():
            return [f"{lang}: {path} is missing; run python -m notifier.translations update"]
        catalog = read_catalogue(lang, locale_dir)
        held = {_key(m): m for m in _messages(catalog)}
        problems += [f"{lang}: missing {key}" for key in sorted(used - held.keys(), key=str)]
        problems += [f"{lang}: no longer used {key}" for key in sorted(held.keys() - used, key=str)]
        for message in held.values():
            problems += _message_problems(lang, message, catalog.num_plurals)
        try:
            translated = {key: _strings(m) for key, m in held.items() if "fuzzy" not in m.flags and all(_strings(m))}
            stale = _compiled(lang, locale_dir) != translated
        except OSError:
            stale = True
        if stale:
            problems.append(f"{lang}: the compiled catalogue does not match {path.name}")
    return problems


def main(argv: Sequence[str] | None = None) -> int:
    command = (list(argv) if argv is not None else sys.argv[1:]) or ["check"]
    if command[0] == "update":
        update()
    problems = check()
    for problem in problems:
        print(problem, file=sys.stderr)
    if problems:
        print(f"{len(problems)} problem(s); translate the entries, then: python -m notifier.translations update",
              file=sys.stderr)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
