"""Rendering alerts into channel messages: template lookup, escaping, SMS length, the templates check."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from notifier.catalogue import Catalogue, load_catalogue
from notifier.models import Alert, TopicIn
from notifier.rendering import (
    Renderer,
    RenderError,
    check_templates,
    sms_segments,
)

PUBLIC_URL = "https://notify.changzhi.gov.cn"
SIGNATURE = "长治市人民政府"
CATALOGUE = load_catalogue()


def bundled_topic(key: str) -> TopicIn:
    topic = CATALOGUE.topic(key)
    assert topic is not None, key
    return topic


HEAVY = bundled_topic("env.heavy-pollution")
FORECAST = bundled_topic("env.air-forecast")
FARE = bundled_topic("transit.fare-change")

def make_alert(**overrides: Any) -> Alert:
    fields: dict[str, Any] = {
        "id": "0f8c2d5e9a7b4c31a6e2d8f4b1c7e903", "topic": "env.heavy-pollution", "msg_type": "alert",
        "references": None, "headline": "11月27日至29日我市将出现重污染天气", "body": "", "instruction": "",
        "severity": "severe", "urgency": "immediate", "level": "orange", "regions": [], "groups": [],
        "policy": "all", "fallback_after": 600, "data": {}, "expires_at": None, "scheduled_at": None,
        "idempotency_key": None, "public": True, "status": "active", "targeted": 0, "publisher": None,
        "department": None, "created_at": datetime(2026, 11, 27, 0, 0, tzinfo=UTC), "cancelled_at": None,
    }
    fields.update(overrides)
    return Alert.model_validate(fields)


def make_templates(tmp_path: Path, files: dict[str, str]) -> Path:
    """A templates folder holding the given files."""
    root = tmp_path / "templates"
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    return root


def marker_template(marker: str) -> str:
    return "{% block text %}" + marker + "{% endblock %}"


@pytest.fixture(scope="module")
def shipped() -> Renderer:
    return Renderer(public_url=PUBLIC_URL, catalogue=CATALOGUE)


@pytest.fixture
def layered(tmp_path: Path) -> Renderer:
    root = make_templates(tmp_path, {
        "env.heavy-pollution/sms.zh-CN.j2": marker_template("topic"),
        "_domain/environment/sms.zh-CN.j2": marker_template("domain"),
        "_default/sms.zh-CN.j2": marker_template("default"),
    })
    return Renderer(root, public_url=PUBLIC_URL, catalogue=CATALOGUE)


# ---------------------------------------------------------------- lookup


@pytest.mark.parametrize(("topic", "expected"), [(HEAVY, "topic"), (FORECAST, "domain"), (FARE, "default")])
def test_most_specific_template_wins(layered: Renderer, topic: TopicIn, expected: str) -> None:
    """The topic's own template beats its domain's, which beats the default."""
    assert layered.render(make_alert(topic=topic.key), topic, "sms", "zh-CN").text == expected


def test_en_falls_back_to_zh_cn_when_missing_everywhere(tmp_path: Path) -> None:
    """With no en file at any level, the zh-CN chain renders and the message says zh-CN."""
    root = make_templates(tmp_path, {"_default/sms.zh-CN.j2": marker_template("中文")})
    message = Renderer(root, public_url=PUBLIC_URL, catalogue=CATALOGUE).render(make_alert(), HEAVY, "sms", "en")
    assert (message.text, message.locale) == ("中文", "zh-CN")


def test_en_default_beats_zh_cn_topic(tmp_path: Path) -> None:
    """A default en file is preferred to a topic zh-CN file for an en subscriber."""
    root = make_templates(tmp_path, {
        "env.heavy-pollution/sms.zh-CN.j2": marker_template("topic zh"),
        "_default/sms.en.j2": marker_template("default en"),
    })
    renderer = Renderer(root, public_url=PUBLIC_URL, catalogue=CATALOGUE)
    assert renderer.render(make_alert(), HEAVY, "sms", "en").text == "default en"


def test_unknown_locale_renders_in_zh_cn(shipped: Renderer) -> None:
    """A locale without a word list is rendered in zh-CN rather than not at all."""
    assert shipped.render(make_alert(), HEAVY, "sms", "fr").locale == "zh-CN"


def test_malformed_locale_is_refused(shipped: Renderer) -> None:
    """A locale that is not a language tag never reaches the file system."""
    with pytest.raises(ValueError, match="locale"):
        shipped.render(make_alert(), HEAVY, "sms", "../../etc")


def test_compiled_templates_are_cached(tmp_path: Path) -> None:
    """Once loaded, a template renders without going back to its file."""
    root = make_templates(tmp_path, {"_default/sms.zh-CN.j2": marker_template("cached")})
    renderer = Renderer(root, public_url=PUBLIC_URL, catalogue=CATALOGUE)
    renderer.render(make_alert(), HEAVY, "sms", "zh-CN")
    (root / "_default" / "sms.zh-CN.j2").unlink()
    assert renderer.render(make_alert(), HEAVY, "sms", "zh-CN").text == "cached"


# ---------------------------------------------------------------- publisher text is data


def test_publisher_text_is_literal_in_text(shipped: Renderer) -> None:
    """Template syntax and markup in a body reach the plain-text part unchanged and unevaluated."""
    body = "{{ 7*7 }} <script>alert(1)</script>"
    text = shipped.render(make_alert(body=body), HEAVY, "email", "zh-CN").text
    assert body in text and "49" not in text


def test_publisher_text_is_escaped_in_html(shipped: Renderer) -> None:
    """Markup in a body is escaped in the HTML part, and template syntax is not evaluated."""
    html = shipped.render(make_alert(body="{{ 7*7 }} <script>x</script>"), HEAVY, "email", "zh-CN").html
    assert html is not None
    assert "&lt;script&gt;x&lt;/script&gt;" in html and "<script>" not in html and "{{ 7*7 }}" in html


def test_html_block_outside_autoescape_is_refused(tmp_path: Path) -> None:
    """An email template whose html block prints without autoescape cannot be used."""
    root = make_templates(tmp_path, {"_default/email.zh-CN.j2": (
        "{% block subject %}s{% endblock %}{% block text %}t{% endblock %}"
        "{% block html %}<p>{{ alert.body }}</p>{% endblock %}")})
    renderer = Renderer(root, public_url=PUBLIC_URL, catalogue=CATALOGUE)
    with pytest.raises(RenderError, match="autoescape"):
        renderer.render(make_alert(), HEAVY, "email", "zh-CN")


def test_sandbox_refuses_mutation(tmp_path: Path) -> None:
    """A template cannot change the data it is given."""
    root = make_templates(tmp_path, {
        "_default/sms.zh-CN.j2": "{% block text %}{{ alert.data.update({'x': 1}) }}{% endblock %}"})
    renderer = Renderer(root, public_url=PUBLIC_URL, catalogue=CATALOGUE)
    with pytest.raises(RenderError, match="SecurityError"):
        renderer.render(make_alert(), HEAVY, "sms", "zh-CN")


def test_undefined_variable_raises_render_error(tmp_path: Path) -> None:
    """A misspelt variable is an error naming it, not an empty string."""
    root = make_templates(tmp_path, {"_default/sms.zh-CN.j2": "{% block text %}{{ headlin }}{% endblock %}"})
    renderer = Renderer(root, public_url=PUBLIC_URL, catalogue=CATALOGUE)
    with pytest.raises(RenderError, match="headlin"):
        renderer.render(make_alert(), HEAVY, "sms", "zh-CN")


def test_subject_is_one_line(shipped: Renderer) -> None:
    """A headline with line breaks cannot break the email subject header."""
    subject = shipped.render(make_alert(headline="A\r\nBcc: x@example.org"), HEAVY, "email", "zh-CN").subject
    assert subject is not None and "\n" not in subject and "\r" not in subject


# ---------------------------------------------------------------- channel shapes and variables


def test_wechat_fields_come_from_field_blocks(shipped: Renderer) -> None:
    """Each field_<name> block of a wechat template becomes a keyword field."""
    fields = shipped.render(make_alert(), HEAVY, "wechat", "zh-CN").fields
    assert list(fields) == ["headline", "department", "time", "level", "detail", "remark"]


def test_webhook_payload_is_the_structured_alert(shipped: Renderer) -> None:
    """The webhook payload carries the alert's fields and its public URL."""
    alert = make_alert(regions=["140402"], data={"aqi": 230})
    payload = shipped.render(alert, HEAVY, "webhook", "zh-CN").payload
    assert payload["regions"] == ["140402"] and payload["data"] == {"aqi": 230}
    assert payload["url"] == f"{PUBLIC_URL}/disclosures/{alert.id}"
    assert payload["department"] == "市环保局" and payload["sent_at"] == "2026-11-27T08:00:00+08:00"


def test_url_joins_public_url_without_double_slash() -> None:
    """A trailing slash on public_url does not double in the disclosure link."""
    renderer = Renderer(public_url=PUBLIC_URL + "/", catalogue=CATALOGUE)
    alert = make_alert()
    assert renderer.render(alert, HEAVY, "sms", "zh-CN").url == f"{PUBLIC_URL}/disclosures/{alert.id}"


@pytest.mark.parametrize(("locale", "expected"), [("zh-CN", "橙色预警"), ("en", "Orange warning")])
def test_level_name_follows_locale(tmp_path: Path, locale: str, expected: str) -> None:
    """The warning colour is named in the message's language."""
    root = make_templates(tmp_path, {f"_default/sms.{locale}.j2": "{% block text %}{{ level_name }}{% endblock %}"})
    renderer = Renderer(root, public_url=PUBLIC_URL, catalogue=CATALOGUE)
    assert renderer.render(make_alert(level="orange"), HEAVY, "sms", locale).text == expected


def test_sent_at_local_is_shanghai_time(tmp_path: Path) -> None:
    """Times are shown in Asia/Shanghai whatever zone the alert was stored in."""
    root = make_templates(tmp_path, {"_default/sms.zh-CN.j2": "{% block text %}{{ sent_at_local }}{% endblock %}"})
    renderer = Renderer(root, public_url=PUBLIC_URL, catalogue=CATALOGUE)
    assert renderer.render(make_alert(), HEAVY, "sms", "zh-CN").text == "2026年11月27日 08:00"


def test_region_names_come_from_catalogue(tmp_path: Path) -> None:
    """Targeted region codes are shown by name, joined the Chinese way."""
    root = make_templates(tmp_path, {"_default/sms.zh-CN.j2": "{% block text %}{{ regions_text }}{% endblock %}"})
    renderer = Renderer(root, public_url=PUBLIC_URL, catalogue=CATALOGUE)
    alert = make_alert(regions=["140402", "140481"])
    assert renderer.render(alert, HEAVY, "sms", "zh-CN").text == "城区、潞城市"


def test_sms_names_update_type(shipped: Renderer) -> None:
    """An update says so in the SMS."""
    text = shipped.render(make_alert(msg_type="update", references="b" * 32), HEAVY, "sms", "zh-CN").text
    assert "更新" in text


def test_cancelled_warning_is_lifted(shipped: Renderer) -> None:
    """Cancelling a warning (an alert with a level) reads 解除 in the SMS."""
    text = shipped.render(make_alert(msg_type="cancel", references="b" * 32), HEAVY, "sms", "zh-CN").text
    assert "解除橙色预警" in text


def test_cancelled_notice_is_withdrawn(shipped: Renderer) -> None:
    """Cancelling a notice without a level withdraws it rather than 'lifting' a policy."""
    alert = make_alert(topic=FARE.key, msg_type="cancel", references="b" * 32, level=None)
    assert "撤销" in shipped.render(alert, FARE, "sms", "zh-CN").text


def test_heavy_pollution_sms_has_link_and_advice(shipped: Renderer) -> None:
    """The heavy-pollution SMS carries the level, outdoor-activity advice, the link and the unsubscribe hint."""
    text = shipped.render(make_alert(), HEAVY, "sms", "zh-CN").text
    assert "橙色预警" in text and "减少户外活动" in text and f"{PUBLIC_URL}/disclosures/" in text
    assert "退订回TD" in text and f"{PUBLIC_URL}/manage" in text and "【" not in text


# ---------------------------------------------------------------- SMS length


@pytest.mark.parametrize(("length", "segments"), [(0, 0), (1, 1), (70, 1), (71, 2), (134, 2), (135, 3), (201, 3)])
def test_sms_segments(length: int, segments: int) -> None:
    """70 characters fit one SMS; beyond that each part carries 67."""
    assert sms_segments("字" * length) == segments


def test_sms_segments_count_signature() -> None:
    """The 【signature】, brackets included, counts towards the length."""
    assert (sms_segments("字" * 61, SIGNATURE), sms_segments("字" * 62, SIGNATURE)) == (1, 2)


# ---------------------------------------------------------------- templates check


def test_check_reports_undefined_variable(tmp_path: Path) -> None:
    """A template using an undefined variable is reported with the variable's name."""
    root = make_templates(tmp_path, {"_default/sms.zh-CN.j2": "{% block text %}{{ no_such_thing }}{% endblock %}"})
    renderer = Renderer(root, public_url=PUBLIC_URL, catalogue=CATALOGUE)
    small = Catalogue(regions=CATALOGUE.regions, groups=CATALOGUE.groups, domains=CATALOGUE.domains,
                      topics=[HEAVY])
    [report] = check_templates(renderer, small, channels=("sms",), locales=("zh-CN",))
    assert report.error is not None and "no_such_thing" in report.error


def test_check_shipped_templates_have_no_errors(shipped: Renderer) -> None:
    """Every shipped topic renders on every channel in both locales."""
    failures = [r for r in check_templates(shipped, CATALOGUE, sms_signature=SIGNATURE) if not r.ok]
    assert failures == []


def test_check_shipped_zh_sms_fit_three_segments(shipped: Renderer) -> None:
    """Every topic's zh-CN SMS, signature included, fits in three segments for its sample alert (the detail link
    and the manage page's address alone take about 130 characters: two segments cannot hold them)."""
    reports = check_templates(shipped, CATALOGUE, sms_signature=SIGNATURE, channels=("sms",), locales=("zh-CN",))
    assert len(reports) == len(CATALOGUE.topics)
    assert {r.topic: r.segments for r in reports if r.segments is None or r.segments > 3} == {}
