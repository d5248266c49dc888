"""The official terms: every code the service knows has its words in both languages, and the Chinese ones are
the official ones (warning levels, the four-grade severity scale, urgency a citizen understands)."""

from __future__ import annotations

import pytest

from channels.registry import BUILTINS
from notifier.i18n import LANGS
from notifier.models import AlertStatus, DeliveryStatus, Level, MsgType, Role, Severity, Urgency
from notifier.terms import KINDS, Terms, term

ENUMS = [("severity", Severity), ("level", Level), ("level_colour", Level), ("urgency", Urgency),
         ("alert_status", AlertStatus), ("delivery_status", DeliveryStatus), ("msg_type", MsgType), ("role", Role)]


@pytest.mark.parametrize(("kind", "enum"), ENUMS)
def test_every_code_of_the_service_has_a_term(kind: str, enum: type) -> None:
    """Each value of the models' enumerations is a term, so no page shows a bare code."""
    assert {member.value for member in enum} <= set(KINDS[kind])


def test_every_built_in_channel_has_a_term() -> None:
    """SMS, WeChat, email and webhook are named in words."""
    assert set(BUILTINS) <= set(KINDS["channel"])


@pytest.mark.parametrize("kind", sorted(KINDS))
def test_every_term_is_in_chinese_words(kind: str) -> None:
    """No term's Chinese is its English or its code."""
    zh, en = Terms("zh-CN"), Terms("en")
    for code in KINDS[kind]:
        assert zh(kind, code) not in (code, en(kind, code)), (kind, code)


def test_severities_are_the_official_four_grades() -> None:
    """extreme 特别严重, severe 严重, moderate 较重, minor 一般."""
    words = {s.value: term("severity", s, "zh-CN") for s in Severity}
    assert words == {"extreme": "特别严重", "severe": "严重", "moderate": "较重", "minor": "一般"}


def test_warning_levels_are_the_official_colours() -> None:
    """蓝色/黄色/橙色/红色预警, and the colour alone where a message needs it."""
    assert [term("level", lv, "zh-CN") for lv in Level] == ["蓝色预警", "黄色预警", "橙色预警", "红色预警"]
    assert [term("level_colour", lv, "zh-CN") for lv in Level] == ["蓝色", "黄色", "橙色", "红色"]


def test_urgency_and_certainty_are_words_a_citizen_understands() -> None:
    """Expected is 尽快 (act soon), never the literal 预计; CAP's certainty in plain words."""
    assert [term("urgency", u, "zh-CN") for u in ("immediate", "expected", "future", "past")] == [
        "立即", "尽快", "未来", "已过去"]
    assert [term("certainty", c, "zh-CN") for c in ("observed", "likely", "possible", "unlikely")] == [
        "已发生", "很可能", "可能", "不太可能"]


def test_a_cancelled_warning_is_lifted_and_any_other_cancel_withdrawn() -> None:
    """解除 for a warning (an alert with a level), 撤销 otherwise."""
    zh = Terms("zh-CN")
    assert (zh.msg_type("cancel", warning=True), zh.msg_type("cancel", warning=False)) == ("解除", "撤销")


@pytest.mark.parametrize("lang", LANGS)
def test_an_unknown_code_shows_as_itself(lang: str) -> None:
    """A channel kind from a plugin has no term: its code is shown rather than breaking the page."""
    assert term("channel", "pager", lang) == "pager"
