"""Reading CAP 1.2: a real-shaped document parses; hostile XML is refused without harm; broken CAP names its field."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import pytest

from notifier.cap import CapInvalid, CapNotWellFormed, CapStatus, CapTooLarge, parse_cap
from notifier.cap.model import MAX_DOCUMENT_BYTES, CapMsgType, CapReference, CapScope
from tests.cap.samples import ZH_INFO, document, schema, zh_info

XINCLUDE = "http://www.w3.org/2001/XInclude"


def field_errors(data: bytes) -> dict[str, str]:
    with pytest.raises(CapInvalid) as caught:
        parse_cap(data)
    assert caught.value.status == 422
    return {error.field: error.message for error in caught.value.errors}


# ---------------------------------------------------------------- a good document


def test_the_sample_is_valid_against_the_oasis_schema() -> None:
    """The test document itself passes the OASIS schema, so the parser is tested on real CAP."""
    schema().validate(document())


def test_a_document_parses_into_plain_data() -> None:
    """Envelope, both info blocks, parameters and areas with their geocodes come out as written."""
    alert = parse_cap(document())
    assert (alert.identifier, alert.sender) == ("14040000100000_20261127080000_0", "cap.changzhi.gov.cn")
    assert alert.sent == datetime.fromisoformat("2026-11-27T08:00:00+08:00")
    assert (alert.status, alert.msg_type, alert.scope) == (CapStatus.ACTUAL, CapMsgType.ALERT, CapScope.PUBLIC)
    zh, en = alert.infos
    assert (zh.language, en.language) == ("zh-CN", "en-US")
    assert (zh.event, zh.urgency, zh.severity, zh.certainty) == ("重污染天气预警", "Immediate", "Severe", "Observed")
    assert zh.parameter("topic") == "env.heavy-pollution" and zh.parameter("groups") == "elderly, child"
    assert [(a.description, a.geocodes[0].value) for a in zh.areas] == [("城区", "140402"), ("郊区", "140411")]
    assert zh.expires == datetime.fromisoformat("2026-11-28T18:00:00+08:00")


def test_references_are_parsed_as_triples() -> None:
    """`references` holds whitespace-separated sender,identifier,sent triples."""
    alert = parse_cap(document(msg_type="Update", references="a.gov,ID-1,2026-11-27T08:00:00+08:00 "
                                                             "b.gov,ID-2,2026-11-27T09:00:00-00:00"))
    assert alert.references == (
        CapReference("a.gov", "ID-1", datetime.fromisoformat("2026-11-27T08:00:00+08:00")),
        CapReference("b.gov", "ID-2", datetime.fromisoformat("2026-11-27T09:00:00+00:00")))
    assert alert.reference_keys() == [("a.gov", "ID-1"), ("b.gov", "ID-2")]


def test_a_missing_language_is_cap_default_en_us() -> None:
    """An info block without <language> is en-US, as CAP 1.2 defines."""
    alert = parse_cap(document(infos=zh_info(**{"<language>zh-CN</language>": ""})))
    assert alert.infos[0].language == "en-US"


def test_an_xml_signature_is_allowed_at_the_end() -> None:
    """A ds:Signature after the info blocks (allowed by the schema) is accepted and ignored."""
    signed = ZH_INFO + '\n  <Signature xmlns="http://www.w3.org/2000/09/xmldsig#"><SignedInfo/></Signature>'
    assert parse_cap(document(infos=signed)).infos[0].event == "重污染天气预警"


# ---------------------------------------------------------------- hostile XML


BILLION_LAUGHS = """<?xml version="1.0"?>
<!DOCTYPE alert [
 <!ENTITY lol "lol">
 <!ENTITY lol1 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
 <!ENTITY lol2 "&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;">
 <!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">
 <!ENTITY lol4 "&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;">
 <!ENTITY lol5 "&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;">
 <!ENTITY lol6 "&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;">
 <!ENTITY lol7 "&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;">
 <!ENTITY lol8 "&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;">
 <!ENTITY lol9 "&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;">
]>
"""


@pytest.fixture
def secret_file(tmp_path: Path) -> Path:
    path = tmp_path / "secret.txt"
    path.write_text("TOP-SECRET-CONTENT", encoding="utf-8")
    return path


def hostile_documents(secret: Path) -> dict[str, bytes]:
    uri = secret.as_uri()
    return {
        "internal entity": document(prolog='<?xml version="1.0"?>\n<!DOCTYPE alert [<!ENTITY x "扩展">]>\n',
                                    identifier="&x;"),
        "billion laughs": document(prolog=BILLION_LAUGHS, identifier="&lol9;"),
        "external entity": document(prolog=f'<?xml version="1.0"?>\n<!DOCTYPE alert [<!ENTITY x SYSTEM "{uri}">]>\n',
                                    identifier="&x;"),
        "external DTD": document(prolog=f'<?xml version="1.0"?>\n<!DOCTYPE alert SYSTEM "{uri}">\n'),
        "parameter entity": document(prolog=f'<?xml version="1.0"?>\n<!DOCTYPE alert [<!ENTITY % p SYSTEM "{uri}"> '
                                            "%p;]>\n"),
        "bare doctype": document(prolog='<?xml version="1.0"?>\n<!DOCTYPE alert>\n'),
    }


@pytest.mark.timeout(10)  # refused before any expansion: a bound, not a speed assertion
@pytest.mark.parametrize("kind", ["internal entity", "billion laughs", "external entity", "external DTD",
                                  "parameter entity", "bare doctype"])
def test_any_dtd_is_refused_as_not_well_formed(kind: str, secret_file: Path) -> None:
    """Entities, billion laughs, external DTDs and entities: any DTD is a 400, nothing expanded or read."""
    with pytest.raises(CapNotWellFormed) as caught:
        parse_cap(hostile_documents(secret_file)[kind])
    assert caught.value.status == 400 and "DTD" in caught.value.detail
    assert "TOP-SECRET" not in caught.value.detail


def test_xinclude_is_not_processed(secret_file: Path) -> None:
    """An xi:include is an element CAP does not know: 422 naming it, and the file is never read into the alert."""
    include = f'<xi:include xmlns:xi="{XINCLUDE}" href="{secret_file.as_uri()}" parse="text"/>'
    errors = field_errors(document(infos=zh_info(**{"<headline>长治市发布重污染天气橙色预警</headline>":
                                                    f"<headline>{include}</headline>"})))
    assert errors == {"alert.info[0].headline": "must hold text, not elements"}
    errors = field_errors(document(infos=ZH_INFO + include))
    assert "include" in errors["alert"] and all("TOP-SECRET" not in m for m in errors.values())


@pytest.mark.parametrize("data", [b"", b"not xml", b"<alert", "<alert>中文</alert>".encode("gbk"),
                                  b'<?xml version="1.0" encoding="GB2312"?><alert/>'])
def test_malformed_xml_is_refused_as_not_well_formed(data: bytes) -> None:
    """Bytes that do not parse as XML (or in an encoding the parser does not read) are a 400."""
    with pytest.raises(CapNotWellFormed) as caught:
        parse_cap(data)
    assert caught.value.status == 400 and "not well-formed" in caught.value.detail


def test_an_oversized_document_is_refused_before_parsing() -> None:
    """A document over the size limit is a 413, whatever it holds."""
    with pytest.raises(CapTooLarge) as caught:
        parse_cap(b" " * (MAX_DOCUMENT_BYTES + 1))
    assert caught.value.status == 413


# ---------------------------------------------------------------- broken CAP: field errors


def test_another_root_or_namespace_is_named() -> None:
    """A CAP 1.1 document (other namespace) is refused, naming the expected namespace."""
    data = document().replace(b"emergency:cap:1.2", b"emergency:cap:1.1")
    errors = field_errors(data)
    assert "urn:oasis:names:tc:emergency:cap:1.2" in errors["alert"]


@pytest.mark.parametrize(("change", "field", "message"), [
    ({"msg_type": "Notice"}, "alert.msgType", "'Notice' is not one of Alert, Update, Cancel, Ack, Error"),
    ({"status": "actual"}, "alert.status", "is not one of"),
    ({"scope": "Everyone"}, "alert.scope", "is not one of"),
    ({"sent": "2026-11-27T08:00:00Z"}, "alert.sent", "offset"),
    ({"sent": "2026-11-27 08:00"}, "alert.sent", "not a CAP time"),
    ({"identifier": "ID 1"}, "alert.identifier", "spaces, commas"),
    ({"sender": "a,b"}, "alert.sender", "spaces, commas"),
    ({"msg_type": "Update", "references": "a.gov,ID-1"}, "alert.references[0]", "sender,identifier,sent"),
    ({"msg_type": "Update", "references": "a.gov,ID-1,yesterday"}, "alert.references[0]", "not a CAP time"),
])
def test_a_bad_envelope_value_names_its_element(change: dict[str, str], field: str, message: str) -> None:
    """An unknown msgType, status or scope, a bad time or identifier is a 422 naming the element."""
    assert message in field_errors(document(**change))[field]


@pytest.mark.parametrize(("replace", "field", "message"), [
    ({"<severity>Severe</severity>": "<severity>Bad</severity>"}, "alert.info[0].severity", "is not one of"),
    ({"<category>Env</category>": "<category>Weather</category>"}, "alert.info[0].category[0]", "is not one of"),
    ({"<category>Env</category>": ""}, "alert.info[0].category", "is required"),
    ({"<event>重污染天气预警</event>": ""}, "alert.info[0].event", "is required"),
    ({"<headline>": "<headline>一</headline><headline>"}, "alert.info[0].headline", "more than once"),
    ({"<expires>2026-11-28T18:00:00+08:00</expires>": "<expires>明天</expires>"}, "alert.info[0].expires",
     "not a CAP time"),
    ({"<areaDesc>城区</areaDesc>": ""}, "alert.info[0].area[0].areaDesc", "is required"),
    ({"<valueName>GB/T 2260</valueName><value>140402</value>": "<value>140402</value>"},
     "alert.info[0].area[0].geocode[0].valueName", "is required"),
    ({"<urgency>Immediate</urgency>": "<urgency>Immediate</urgency><colour>red</colour>"}, "alert.info[0]",
     "unexpected element 'colour'"),
])
def test_a_bad_info_value_names_its_element(replace: dict[str, str], field: str, message: str) -> None:
    """Broken info blocks are a 422 whose field path leads to the element."""
    assert message in field_errors(document(infos=zh_info(**replace)))[field]


def test_a_missing_required_element_is_named() -> None:
    """A document without <sender> names alert.sender as required."""
    data = document().replace(b"<sender>cap.changzhi.gov.cn</sender>", b"")
    assert field_errors(data)["alert.sender"] == "is required"


def test_every_problem_is_reported_at_once() -> None:
    """Several problems in one document all come back, so a sender fixes them in one go."""
    errors = field_errors(document(msg_type="Notice", sent="now", infos=zh_info(**{
        "<severity>Severe</severity>": "<severity>Bad</severity>"})))
    assert {"alert.msgType", "alert.sent", "alert.info[0].severity"} <= set(errors)
