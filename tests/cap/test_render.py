"""Writing CAP 1.2: every document validates against the OASIS schema and parses back to the alert it came from."""

from __future__ import annotations

import dataclasses
from datetime import datetime
from typing import Any

import pytest

from notifier.cap import (
    CapEnvelope,
    CapImport,
    CapNames,
    CapReference,
    CapSettings,
    CapStatus,
    CapTexts,
    gbt_identifier,
    import_cap,
    own_identifier,
    own_sender,
    parse_cap,
    parse_gbt_identifier,
    render_cap,
)
from notifier.store.records import AlertRow
from tests.cap.samples import document, schema

SENT = datetime.fromisoformat("2026-11-27T08:00:00+08:00")
SENDER = "notify.changzhi.gov.cn"
NAMES = CapNames(topic_name="重污染天气预警", topic_name_en="Heavy air pollution warning", domain="environment",
                 department="市环保局", department_en="Changzhi Ecology and Environment Bureau",
                 regions={"140402": ("城区", "Chengqu"), "140411": ("郊区", "Jiaoqu"), "140481": ("潞城市", None)})
EN = CapTexts("Orange heavy pollution warning", "Heavy pollution from 27 to 29 November.", "Stay indoors.")


def row(**changes: Any) -> AlertRow:
    base = AlertRow(
        id="3f2a9e0d8b4c6fa1e27b3d9c0f4e815c", topic="env.heavy-pollution", msg_type="alert", references_id=None,
        headline="长治市发布重污染天气橙色预警", body="预计11月27日至29日出现重污染天气过程。",
        instruction="老人和儿童减少户外活动。", severity="severe", urgency="immediate", level="orange",
        target_regions=["140402", "140411"], target_groups=["elderly", "child"], policy="all", fallback_after=600,
        data={}, expires_at=datetime.fromisoformat("2026-11-28T18:00:00+08:00").timestamp(), scheduled_at=None,
        idempotency_key=None, request_hash="", public=True, status="active", targeted=0, publisher=None,
        department="市环保局", created_at=SENT.timestamp(), cancelled_at=None)
    return dataclasses.replace(base, **changes)


def envelope(identifier: str = "3f2a9e0d8b4c6fa1e27b3d9c0f4e815c", **changes: Any) -> CapEnvelope:
    return dataclasses.replace(CapEnvelope(SENDER, identifier, SENT), **changes)


def round_trip(alert: AlertRow, env: CapEnvelope, *, en: CapTexts | None = None,
               resolved: dict[tuple[str, str], str] | None = None, **kwargs: Any) -> tuple[bytes, CapImport]:
    data = render_cap(alert, env, NAMES, en=en, **kwargs)
    schema().validate(data)
    return data, import_cap(parse_cap(data), resolved)


def assert_same(alert: AlertRow, back: CapImport) -> None:
    got = back.alert
    assert (got.topic, got.msg_type.value, got.references) == (alert.topic, alert.msg_type, alert.references_id)
    assert (got.headline, got.body, got.instruction) == (alert.headline, alert.body, alert.instruction)
    assert (got.severity.value, got.urgency.value) == (alert.severity, alert.urgency)
    assert (got.level.value if got.level else None) == alert.level
    assert (got.regions, got.groups, got.public) == (alert.target_regions, alert.target_groups, alert.public)
    assert (got.expires_at.timestamp() if got.expires_at else None) == alert.expires_at


# ---------------------------------------------------------------- schema-valid round trips


def test_a_full_alert_round_trips_through_valid_cap() -> None:
    """Regions, groups, colour, expiry and English texts: valid CAP that parses back to the same alert."""
    alert = row()
    _, back = round_trip(alert, envelope(), en=EN, web="https://notify.changzhi.gov.cn/disclosures/3f2a")
    assert_same(alert, back)
    assert back.en == EN
    assert (back.origin.sender, back.origin.identifier, back.origin.sent) == (SENDER, alert.id, SENT)


def test_an_alert_for_everyone_everywhere_round_trips() -> None:
    """No regions, no groups, no colour, no expiry, no English: one info, no area, and back the same."""
    alert = row(target_regions=[], target_groups=[], level=None, expires_at=None, body="", instruction="")
    data, back = round_trip(alert, envelope())
    assert_same(alert, back)
    assert back.en is None and data.count(b"<info>") == 1 and b"<area>" not in data


@pytest.mark.parametrize(("severity", "urgency"), [("extreme", "immediate"), ("moderate", "expected"),
                                                   ("minor", "future")])
def test_severities_and_urgencies_round_trip(severity: str, urgency: str) -> None:
    """Each of our severities and urgencies maps to CAP's and back."""
    alert = row(severity=severity, urgency=urgency)
    assert_same(alert, round_trip(alert, envelope())[1])


def test_an_update_round_trips_with_its_reference() -> None:
    """An update carries msgType Update and references the alert it supersedes as sender,identifier,sent."""
    original = envelope("ORIG-1")
    update = row(id="b" * 32, msg_type="update", references_id="3f2a9e0d8b4c6fa1e27b3d9c0f4e815c")
    data, back = round_trip(update, envelope("b" * 32, references=(original.reference(),)),
                            resolved={(SENDER, "ORIG-1"): "3f2a9e0d8b4c6fa1e27b3d9c0f4e815c"})
    assert b"<msgType>Update</msgType>" in data
    assert f"<references>{SENDER},ORIG-1,2026-11-27T08:00:00+08:00</references>".encode() in data
    assert_same(update, back)


def test_a_cancel_round_trips() -> None:
    """A cancel notice is msgType Cancel with its reference."""
    cancel = row(id="c" * 32, msg_type="cancel", references_id="3f2a9e0d8b4c6fa1e27b3d9c0f4e815c",
                 headline="解除重污染天气橙色预警")
    original = CapReference(SENDER, "ORIG-1", SENT)
    data, back = round_trip(cancel, envelope("c" * 32, references=(original,)),
                            resolved={(SENDER, "ORIG-1"): "3f2a9e0d8b4c6fa1e27b3d9c0f4e815c"})
    assert b"<msgType>Cancel</msgType>" in data
    assert_same(cancel, back)


def test_an_alert_kept_out_of_the_public_column_is_restricted() -> None:
    """public = false is written as scope Restricted with a restriction, and reads back as not public."""
    alert = row(public=False)
    data, back = round_trip(alert, envelope())
    assert b"<scope>Restricted</scope>" in data and b"<restriction>" in data
    assert_same(alert, back)


def test_an_exercise_stays_an_exercise() -> None:
    """An exercise is written with status Exercise and reads back as one."""
    data, back = round_trip(row(public=False), envelope(status=CapStatus.EXERCISE))
    assert b"<status>Exercise</status>" in data and back.exercise


def test_an_imported_alert_reads_back_as_it_came() -> None:
    """Imported CAP stored and read back keeps its sender, identifier, sent, event, category and certainty."""
    first = import_cap(parse_cap(document()))
    body = first.alert
    stored = row(headline=body.headline, body=body.body, instruction=body.instruction, severity=body.severity.value,
                 urgency=body.urgency.value, level=body.level.value if body.level else None,
                 target_regions=body.regions, target_groups=body.groups,
                 expires_at=body.expires_at.timestamp() if body.expires_at else None, public=body.public)
    data, back = round_trip(stored, CapEnvelope.of_origin(first.origin), en=first.en, origin=first.origin)
    assert back.alert == first.alert and back.origin == first.origin and back.en == first.en
    assert b"<identifier>14040000100000_20261127080000_0</identifier>" in data


def test_publisher_text_is_escaped_and_control_characters_dropped() -> None:
    """<, &, ]]> and quotes survive exactly; characters XML cannot carry are dropped, the document stays valid."""
    alert = row(headline='警告 <b>&amp; "x" ]]> \'y\'', body="第一行\n第二行\x07\x1b", instruction="")
    data, back = round_trip(alert, envelope())
    assert back.alert.headline == alert.headline and back.alert.body == "第一行\n第二行"
    assert b"\x07" not in data


def test_english_region_names_fall_back_to_chinese() -> None:
    """The en block names areas in English where the catalogue has a name, else in Chinese."""
    data, _ = round_trip(row(target_regions=["140402", "140481"]), envelope(), en=EN)
    text = data.decode()
    en_block = text[text.index("<language>en</language>"):]
    assert "<areaDesc>Chengqu</areaDesc>" in en_block and "<areaDesc>潞城市</areaDesc>" in en_block


def test_times_are_beijing_time_with_whole_seconds() -> None:
    """sent and expires are written +08:00 without fractions, as CAP's schema requires."""
    data, _ = round_trip(row(expires_at=1795860000.75), envelope(sent=datetime.fromisoformat(
        "2026-11-27T00:00:00.5+00:00")))
    assert b"<sent>2026-11-27T08:00:00+08:00</sent>" in data
    assert b"<expires>2026-11-28T18:00:00+08:00</expires>" in data


# ---------------------------------------------------------------- identifiers


def test_a_gbt_35965_identifier_has_unit_time_and_serial() -> None:
    """ZZZZZZDDDUUUXX_YYYYMMDDhhmmss_N, 31 characters, in Beijing time."""
    identifier = gbt_identifier("14040000100000", datetime.fromisoformat("2026-11-27T00:00:00+00:00"), 2)
    assert identifier == "14040000100000_20261127080000_2" and len(identifier) == 31
    parsed = parse_gbt_identifier(identifier)
    assert parsed is not None and (parsed.unit, parsed.serial) == ("14040000100000", 2)
    assert parsed.entered == SENT


def test_our_identifier_follows_the_sender_code_setting() -> None:
    """With [cap] sender_code the identifier is GB/T 35965.1; without, it is the alert's id."""
    coded = CapSettings(sender_code="14040000100000")
    assert own_identifier("3f2a", SENT.timestamp(), coded) == "14040000100000_20261127080000_0"
    assert own_identifier("3f2a", SENT.timestamp(), CapSettings()) == "3f2a"
    assert own_sender(CapSettings(), "notify.changzhi.gov.cn") == "notify.changzhi.gov.cn"
    assert own_sender(CapSettings(sender="cap.changzhi.gov.cn"), "x") == "cap.changzhi.gov.cn"


def test_an_eleven_digit_provincial_unit_code_is_accepted() -> None:
    """Profiles with an 11-digit unit code (no internal code) are used as given."""
    assert gbt_identifier("14040000100", SENT) == "14040000100_20261127080000_0"


@pytest.mark.parametrize("code", ["1404", "1404000010000x", "140400001000000"])
def test_a_bad_sender_code_is_refused(code: str) -> None:
    """[cap] sender_code must be the 14-digit (or 11-digit) unit code."""
    with pytest.raises(ValueError, match="sender_code"):
        CapSettings(sender_code=code)


def test_a_sender_with_a_space_is_refused() -> None:
    """[cap] sender cannot hold spaces or commas (CAP forbids them)."""
    with pytest.raises(ValueError, match="spaces"):
        CapSettings(sender="市 环保局")


def test_the_serial_is_one_digit() -> None:
    """GB/T 35965.1 numbers at most ten alerts of a unit in one second."""
    with pytest.raises(ValueError, match="serial"):
        gbt_identifier("14040000100000", SENT, 10)


@pytest.mark.parametrize("identifier", ["3f2a9e0d8b4c6fa1e27b3d9c0f4e815c", "14040000100000_20261327080000_0",
                                        "14040000100000_20261127080000"])
def test_other_identifiers_are_not_gbt(identifier: str) -> None:
    """An id, an impossible date or a missing serial is not read as a GB/T identifier."""
    assert parse_gbt_identifier(identifier) is None
