"""From CAP to our alert: the zh-CN block publishes, en is kept, our rules refuse what we cannot deliver faithfully."""

from __future__ import annotations

from datetime import datetime

import pytest

from notifier.cap import CapImport, CapInvalid, CapOrigin, CapStatus, CapTexts, cap_key, import_cap, parse_cap
from notifier.models import Level, MsgType, Severity, Urgency
from tests.cap.samples import EN_INFO, ZH_INFO, document, zh_info


def imported(data: bytes, resolved: dict[tuple[str, str], str] | None = None) -> CapImport:
    return import_cap(parse_cap(data), resolved)


def refusals(data: bytes, resolved: dict[tuple[str, str], str] | None = None) -> dict[str, str]:
    with pytest.raises(CapInvalid) as caught:
        imported(data, resolved)
    assert caught.value.status == 422
    return {error.field: error.message for error in caught.value.errors}


def test_the_zh_block_becomes_our_alert() -> None:
    """Topic, texts, severity, urgency, colour, regions, groups and expiry come from the zh-CN block."""
    alert = imported(document()).alert
    assert alert.topic == "env.heavy-pollution" and alert.msg_type is MsgType.ALERT
    assert (alert.headline, alert.body, alert.instruction) == (
        "长治市发布重污染天气橙色预警", "预计11月27日至29日出现重污染天气过程。", "老人和儿童减少户外活动。")
    assert (alert.severity, alert.urgency, alert.level) == (Severity.SEVERE, Urgency.IMMEDIATE, Level.ORANGE)
    assert alert.regions == ["140402", "140411"] and alert.groups == ["elderly", "child"]
    assert alert.expires_at == datetime.fromisoformat("2026-11-28T18:00:00+08:00") and alert.public


def test_the_en_block_gives_the_english_texts() -> None:
    """The en block's headline, description and instruction are kept for English subscribers."""
    assert imported(document()).en == CapTexts("Orange heavy pollution warning for Changzhi",
                                               "Heavy pollution is expected from 27 to 29 November.",
                                               "Older people and children should stay indoors.")


def test_without_an_en_block_there_are_no_english_texts() -> None:
    """A zh-CN-only document has no English texts: English subscribers get the zh-CN block."""
    assert imported(document(infos=ZH_INFO)).en is None


def test_the_origin_is_kept_for_reading_back() -> None:
    """Sender, identifier, sent, status, event, categories and certainty survive, also through JSON."""
    origin = imported(document()).origin
    assert origin == CapOrigin("cap.changzhi.gov.cn", "14040000100000_20261127080000_0",
                               datetime.fromisoformat("2026-11-27T08:00:00+08:00"), CapStatus.ACTUAL,
                               "重污染天气预警", ("Env",), "Observed", "Heavy air pollution warning")
    assert CapOrigin.from_json(origin.to_json()) == origin


def test_the_same_sender_and_identifier_give_the_same_idempotency_key() -> None:
    """Sending the same CAP message twice publishes one alert: the key is derived from sender + identifier."""
    first, again = imported(document()), imported(document())
    assert first.alert.idempotency_key == again.alert.idempotency_key == cap_key(
        "cap.changzhi.gov.cn", "14040000100000_20261127080000_0")
    assert cap_key("a", "b,c") != cap_key("a,b", "c")


def test_no_geocode_means_every_region() -> None:
    """A document with no area (or an area with a description only) targets every region."""
    assert imported(document(infos=zh_info(**{
        "<area>\n      <areaDesc>城区</areaDesc>\n      <geocode><valueName>GB/T 2260</valueName><value>140402</value>"
        "</geocode>\n    </area>": "<area><areaDesc>全市</areaDesc></area>",
        "<area>\n      <areaDesc>郊区</areaDesc>\n      <geocode><valueName>GB/T 2260</valueName><value>140411</value>"
        "</geocode>\n    </area>": ""}))).alert.regions == []


def test_other_geocodes_beside_gbt_2260_are_ignored() -> None:
    """An area with a GB/T 2260 code and another valueName uses the GB/T 2260 code; spacing of the name aside."""
    infos = zh_info(**{"<valueName>GB/T 2260</valueName><value>140402</value>":
                       "<valueName>GB/T2260</valueName><value>140402</value></geocode>"
                       "<geocode><valueName>GB/T 10114</valueName><value>140402001000</value>"})
    assert imported(document(infos=infos)).alert.regions == ["140402", "140411"]


@pytest.mark.parametrize("replacement", [
    "<valueName>GB/T 10114</valueName><value>140402001000</value>",
    "<valueName>SAME</valueName><value>006037</value>",
])
def test_an_area_we_cannot_target_is_refused_not_widened(replacement: str) -> None:
    """An area marked only by another code is refused rather than sent to the whole city."""
    infos = zh_info(**{"<valueName>GB/T 2260</valueName><value>140402</value>": replacement})
    assert "refused rather than sent city-wide" in refusals(document(infos=infos))["alert.info[0].area[0]"]


def test_a_polygon_only_area_is_refused() -> None:
    """A polygon without a GB/T 2260 geocode cannot be targeted and is refused."""
    infos = zh_info(**{"<geocode><valueName>GB/T 2260</valueName><value>140402</value></geocode>":
                       "<polygon>36.1,113.1 36.2,113.2 36.1,113.3 36.1,113.1</polygon>"})
    assert "polygon" in refusals(document(infos=infos))["alert.info[0].area[0]"]


@pytest.mark.parametrize("code", ["1404", "1404020", "14040２", "abcdef"])
def test_a_bad_geocode_form_is_refused(code: str) -> None:
    """A GB/T 2260 geocode that is not six ASCII digits is a field error at its value."""
    infos = zh_info(**{"<value>140402</value>": f"<value>{code}</value>"})
    assert "six-digit" in refusals(document(infos=infos))["alert.info[0].area[0].geocode[0].value"]


def test_a_document_without_info_is_refused() -> None:
    """No info block at all: nothing to publish."""
    assert "zh-CN" in refusals(document(infos=""))["alert.info"]


def test_a_document_without_a_chinese_block_is_refused() -> None:
    """Only an English block (or blocks without <language>, i.e. en-US) is refused, saying how to fix it."""
    assert "zh-CN" in refusals(document(infos=EN_INFO))["alert.info"]


def test_two_chinese_blocks_are_refused() -> None:
    """Two zh blocks would be two alerts in one message: refused."""
    assert "second" in refusals(document(infos=ZH_INFO + ZH_INFO))["alert.info[1].language"]


@pytest.mark.parametrize("status", ["System", "Draft"])
def test_system_and_draft_messages_are_refused(status: str) -> None:
    """Only Actual, Exercise and Test are accepted."""
    assert "Actual, Exercise or Test" in refusals(document(status=status))["alert.status"]


@pytest.mark.parametrize("status", ["Exercise", "Test"])
def test_exercises_are_recorded_not_published(status: str) -> None:
    """Exercise and Test import as exercises, kept out of the public column."""
    result = imported(document(status=status))
    assert result.exercise and not result.alert.public and result.origin.status == CapStatus(status)


def test_ack_and_error_messages_are_refused() -> None:
    """msgType Ack or Error is valid CAP but not something we publish."""
    assert "Alert, Update or Cancel" in refusals(document(msg_type="Ack"))["alert.msgType"]


def test_restricted_scope_keeps_the_alert_out_of_the_public_column() -> None:
    """scope Restricted imports as public = false."""
    assert not imported(document(scope="Restricted")).alert.public


def test_a_missing_topic_parameter_is_refused() -> None:
    """Without a `topic` parameter we do not know which stream it belongs to."""
    infos = zh_info(**{"<parameter><valueName>topic</valueName><value>env.heavy-pollution</value></parameter>": ""})
    assert "topic" in refusals(document(infos=infos))["alert.info[0].parameter"]


def test_unknown_severity_is_refused() -> None:
    """CAP's Unknown severity has no counterpart among our four."""
    infos = zh_info(**{"<severity>Severe</severity>": "<severity>Unknown</severity>"})
    assert "Extreme, Severe, Moderate or Minor" in refusals(document(infos=infos))["alert.info[0].severity"]


@pytest.mark.parametrize("urgency", ["Past", "Unknown"])
def test_past_or_unknown_urgency_is_not_immediate(urgency: str) -> None:
    """Past and Unknown urgency import as expected (quiet hours apply)."""
    infos = zh_info(**{"<urgency>Immediate</urgency>": f"<urgency>{urgency}</urgency>"})
    assert imported(document(infos=infos)).alert.urgency is Urgency.EXPECTED


def test_a_missing_headline_falls_back_to_the_event() -> None:
    """CAP's headline is optional; ours is not: the event names the alert then."""
    infos = zh_info(**{"<headline>长治市发布重污染天气橙色预警</headline>": ""})
    assert imported(document(infos=infos)).alert.headline == "重污染天气预警"


def test_an_unknown_colour_is_a_field_error_at_the_parameter() -> None:
    """A `level` parameter that is not one of our four colours names the parameter."""
    infos = zh_info(**{"<value>orange</value>": "<value>purple</value>"})
    assert "alert.info[0].parameter(level)" in refusals(document(infos=infos))


def test_an_overlong_description_names_the_cap_element() -> None:
    """Our limits apply, and the error names CAP's element (description), not our field (body)."""
    infos = zh_info(**{"预计11月27日至29日出现重污染天气过程。": "长" * 5001})
    assert "alert.info[0].description" in refusals(document(infos=infos))


def test_an_update_acts_on_the_latest_known_reference() -> None:
    """Of several references, the most recent one the store knows is the alert the update supersedes."""
    refs = ("cap.changzhi.gov.cn,A-1,2026-11-27T08:00:00+08:00 cap.changzhi.gov.cn,A-2,2026-11-27T09:00:00+08:00 "
            "cap.changzhi.gov.cn,A-3,2026-11-27T10:00:00+08:00")
    known = {("cap.changzhi.gov.cn", "A-1"): "alert-one", ("cap.changzhi.gov.cn", "A-2"): "alert-two"}
    alert = imported(document(msg_type="Update", references=refs), known).alert
    assert (alert.msg_type, alert.references) == (MsgType.UPDATE, "alert-two")


def test_a_cancel_without_references_is_refused() -> None:
    """A Cancel must say what it cancels."""
    assert "needs the alert it refers to" in refusals(document(msg_type="Cancel"))["alert.references"]


def test_a_cancel_of_an_unknown_alert_is_refused() -> None:
    """References the store does not know cannot be acted on."""
    refs = "elsewhere.gov,X-1,2026-11-27T08:00:00+08:00"
    assert "none of the referenced alerts" in refusals(document(msg_type="Cancel", references=refs))[
        "alert.references"]
