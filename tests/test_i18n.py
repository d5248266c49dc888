"""The one catalogue and the one language rule: every msgid translated in both languages, compiled catalogues
that match their sources, a check that catches what it claims, and the order in which a page picks a language."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from babel.messages.mofile import write_mo
from babel.messages.pofile import write_po

from notifier import translations
from notifier.i18n import LANGS, UnsupportedLanguage, Words, accepted_languages, cli_lang, pick_lang, translator
from notifier.translations import check, po_path, read_catalogue

# ---------------------------------------------------------------- the catalogues


def test_every_msgid_is_translated_in_both_languages_and_compiled() -> None:
    """The shipped catalogues hold every msgid the code and pages use, translated, and their .mo files match."""
    assert check() == []


@pytest.fixture
def copied(tmp_path: Path) -> Path:
    """A copy of the shipped catalogues that a test may break."""
    shutil.copytree(translations.LOCALE_DIR, tmp_path / "locale", ignore=shutil.ignore_patterns("*.pot"))
    return tmp_path / "locale"


def _rewrite(locale_dir: Path, lang: str, msgid: str, string: str | None, *, compile_it: bool = True) -> None:
    """Set (or, with None, delete) one entry of a copied catalogue, and compile it unless told not to."""
    catalog = read_catalogue(lang, locale_dir)
    if string is None:
        catalog.delete(msgid)
    else:
        catalog[msgid].string = string
    with po_path(lang, locale_dir).open("wb") as fp:
        write_po(fp, catalog)
    if compile_it:
        with po_path(lang, locale_dir).with_suffix(".mo").open("wb") as fp:
            write_mo(fp, catalog)


def test_check_names_an_untranslated_chinese_entry(copied: Path) -> None:
    """A msgid whose Chinese text is empty fails the check, naming it."""
    _rewrite(copied, "zh-CN", "Sign in", "")
    assert "zh-CN: untranslated (None, 'Sign in')" in check(copied)


def test_check_names_an_untranslated_english_entry(copied: Path) -> None:
    """English is checked as strictly as Chinese."""
    _rewrite(copied, "en", "Sign in", "")
    assert "en: untranslated (None, 'Sign in')" in check(copied)


def test_check_names_a_msgid_missing_from_a_catalogue(copied: Path) -> None:
    """A msgid the pages use but a catalogue lacks fails the check."""
    _rewrite(copied, "zh-CN", "Sign in", None)
    assert "zh-CN: missing (None, 'Sign in')" in check(copied)


def test_check_names_a_stale_compiled_catalogue(copied: Path) -> None:
    """A .po changed without compiling its .mo fails the check."""
    _rewrite(copied, "zh-CN", "Sign in", "登入", compile_it=False)
    assert "zh-CN: the compiled catalogue does not match notifier.po" in check(copied)


def test_check_names_a_translation_that_drops_a_placeholder(copied: Path) -> None:
    """A translation must keep the msgid's placeholders, or the page would lose the figure."""
    _rewrite(copied, "zh-CN", "%(n)s in all", "共若干条")
    assert any(p.startswith("zh-CN: (None, '%(n)s in all') has placeholders") for p in check(copied))


@pytest.mark.parametrize("lang", LANGS)
def test_plural_forms_follow_the_language(lang: str) -> None:
    """English says 1 minute and 2 minutes; Chinese has one form for both."""
    singular = ("Too many codes were asked for from your network (5 an hour). Please try again in about %(num)d "
                "minute.")
    plural = ("Too many codes were asked for from your network (5 an hour). Please try again in about %(num)d "
              "minutes.")
    one, two = (translator(lang).ngettext(singular, plural, n) % {"num": n} for n in (1, 2))
    if lang == "en":
        assert one.endswith("1 minute.") and two.endswith("2 minutes.")
    else:
        assert "1 分钟" in one and "2 分钟" in two


# ---------------------------------------------------------------- the language rule


def test_an_explicit_choice_wins_over_everything() -> None:
    """?lang= (or a form's lang) beats the cookie, the subscriber's language and the browser."""
    choice = pick_lang(chosen="en", remembered="zh-CN", preferred="zh-CN", accept_language="zh-CN")
    assert (choice.lang, choice.explicit) == ("en", True)


def test_the_remembered_choice_beats_the_readers_own_and_the_browser() -> None:
    """The cookie comes before the subscriber's message language and Accept-Language."""
    choice = pick_lang(remembered="en", preferred="zh-CN", accept_language="zh-CN,zh;q=0.9")
    assert (choice.lang, choice.explicit) == ("en", False)


def test_the_readers_own_language_beats_the_browser() -> None:
    """A subscriber who chose English messages gets English pages even from a Chinese browser."""
    assert pick_lang(preferred="en", accept_language="zh-CN").lang == "en"


@pytest.mark.parametrize(("header", "lang"), [
    ("en-GB,en;q=0.9", "en"), ("fr-FR,en;q=0.5,zh;q=0.4", "en"), ("fr;q=1, zh-Hans;q=0.8", "zh-CN"),
    ("en;q=0.2, zh-SG;q=0.9", "zh-CN"), ("zh-TW,en;q=0.1", "en"), ("de, fr", "zh-CN"), ("", "zh-CN"),
    ("en;q=0, zh", "zh-CN"), ("en;q=abc, zh", "zh-CN"),
])
def test_the_browser_language_is_matched_by_weight(header: str, lang: str) -> None:
    """Accept-Language picks the most wanted supported language; Traditional Chinese is not Simplified."""
    assert pick_lang(accept_language=header).lang == lang


def test_nothing_known_means_chinese() -> None:
    """No choice, no cookie, no browser header: Simplified Chinese, not remembered."""
    choice = pick_lang(chosen="fr", remembered="xx", preferred=None, accept_language=None)
    assert (choice.lang, choice.explicit) == ("zh-CN", False)


def test_accept_language_ignores_refused_and_malformed_entries() -> None:
    """q=0 means "not this one"; an entry with a broken weight is dropped."""
    assert accepted_languages("en;q=0, fr;q=x, zh;q=0.5, de") == ["de", "zh"]


# ---------------------------------------------------------------- the command line's language


@pytest.mark.parametrize(("environ", "lang"), [
    ({}, "zh-CN"), ({"LANG": "C.UTF-8"}, "zh-CN"), ({"LANG": "POSIX"}, "zh-CN"), ({"LANG": "en_US.UTF-8"}, "en"),
    ({"LANG": "zh_CN.GB18030"}, "zh-CN"), ({"LANG": "zh_TW.UTF-8"}, "zh-CN"), ({"LANG": "fr_FR.UTF-8"}, "zh-CN"),
    ({"LANG": "en_US.UTF-8", "LC_MESSAGES": "zh_CN.UTF-8"}, "zh-CN"),
    ({"LC_MESSAGES": "zh_CN.UTF-8", "LC_ALL": "en_GB@euro"}, "en"),
    ({"LC_ALL": "C", "LANG": "en_US.UTF-8"}, "zh-CN"),  # POSIX: LC_ALL decides, and C names no language
    ({"LANG": "en_US.UTF-8", "NOTIFIER_LANG": "zh-CN"}, "zh-CN"),
])
def test_the_command_line_language_follows_the_posix_locale(environ: dict[str, str], lang: str) -> None:
    """NOTIFIER_LANG, then the first of LC_ALL, LC_MESSAGES, LANG that is set; C, POSIX and other languages
    leave Chinese."""
    assert cli_lang(None, environ) == lang


def test_an_explicit_command_line_language_must_be_supported() -> None:
    """--lang (or NOTIFIER_LANG) naming a language there is not is refused rather than ignored."""
    assert cli_lang("en-GB", {"NOTIFIER_LANG": "zh-CN"}) == "en"
    with pytest.raises(UnsupportedLanguage):
        cli_lang(None, {"NOTIFIER_LANG": "fr"})


def test_words_beside_puts_the_english_after_the_chinese_only_in_chinese() -> None:
    """A heading the command line always printed in both languages: 覆盖概况 Coverage, or Coverage alone."""
    heading = ("heading", "Coverage")
    assert (Words("zh-CN").beside(heading), Words("en").beside(heading)) == ("覆盖概况 Coverage", "Coverage")
