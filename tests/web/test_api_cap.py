"""CAP 1.2 over HTTP: documents published through POST /v1/alerts like JSON, alerts read back as CAP that the
OASIS schema accepts, the public CAP documents and feed, and hostile XML refused with nothing stored."""

from __future__ import annotations

import time
import xml.etree.ElementTree as ET
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from notifier.cap import CAP_MEDIA_TYPE, CAP_NS, import_cap, parse_cap, parse_gbt_identifier
from notifier.localtime import LOCAL_TZ
from notifier.models import Level, Role
from tests.cap.samples import EN_INFO, document, schema, zh_info
from tests.cap.test_parse import hostile_documents
from tests.web.conftest import Api, ApiFactory

pytestmark = pytest.mark.both_backends

ATOM = "{http://www.w3.org/2005/Atom}"
SENDER = "cap.shanxi.gov.cn"
SENDER_CODE = "14040000100000"


def _future(days: int = 2) -> str:
    return (datetime.now(LOCAL_TZ) + timedelta(days=days)).replace(microsecond=0).isoformat()


def cap_doc(*, identifier: str = "14000000100000_20261203080000_0", en: bool = True, **kwargs: Any) -> bytes:
    """The samples' orange pollution warning (城区 and 郊区, elderly and children), expiring in two days."""
    info = zh_info(**{"2026-11-28T18:00:00+08:00": _future()}) + (EN_INFO if en else "")
    return document(identifier=identifier, sender=SENDER, infos=info, **kwargs)


async def post_cap(api: Api, data: bytes, role: Role = Role.ADMIN) -> tuple[int, dict[str, Any]]:
    response = await api.client.post("/v1/alerts", data=data,
                                     headers={**api.auth(role), "Content-Type": CAP_MEDIA_TYPE})
    return response.status, await response.json()


async def get_cap(api: Api, path: str, headers: dict[str, str] | None = None) -> bytes:
    response = await api.client.get(path, headers=headers)
    assert response.status == 200, await response.text()
    assert response.headers["Content-Type"].startswith(CAP_MEDIA_TYPE)
    data = await response.read()
    schema().validate(data)
    return data


async def alert_json(api: Api, alert_id: str) -> dict[str, Any]:
    response = await api.client.get(f"/v1/alerts/{alert_id}", headers=api.auth())
    assert response.status == 200
    data: dict[str, Any] = await response.json()
    return data


async def alert_count(api: Api) -> int:
    response = await api.client.get("/v1/alerts", headers=api.auth())
    return int((await response.json())["total"])


def reference(data: bytes) -> str:
    """The `sender,identifier,sent` of a CAP document, as an Update or Cancel names it."""
    doc = parse_cap(data)
    return f"{doc.sender},{doc.identifier},{doc.sent.isoformat()}"


# ---------------------------------------------------------------- CAP in


async def test_a_cap_document_is_published_like_json(api: Api) -> None:
    """An Actual Alert is answered 202 and stored with its regions, groups, colour and English words."""
    await api.subscriber(region="140402", groups=["elderly"])
    await api.subscriber(region="140481", groups=["elderly"], contacts={"email": "far@example.org"},
                         subscriptions=[{"topic": "env.heavy-pollution", "channels": ["email"]}])
    status, body = await post_cap(api, cap_doc())
    assert status == 202, body
    assert (body["status"], body["targeted"]) == ("active", 1)
    alert = await alert_json(api, body["id"])
    assert (alert["regions"], alert["groups"], alert["level"]) == (["140402", "140411"], ["elderly", "child"],
                                                                   "orange")
    assert alert["headline"] == "长治市发布重污染天气橙色预警"
    assert alert["headline_en"] == "Orange heavy pollution warning for Changzhi"


async def test_the_same_sender_and_identifier_return_the_same_alert(api: Api) -> None:
    """Posting a CAP document again answers 200 with the first alert and stores nothing new."""
    data = cap_doc()
    first_status, first = await post_cap(api, data)
    again_status, again = await post_cap(api, data)
    assert (first_status, again_status) == (202, 200)
    assert again["id"] == first["id"]
    assert await alert_count(api) == 1


async def test_the_same_identifier_with_other_content_is_a_conflict(api: Api) -> None:
    """Another message under a sender and identifier already used: 409 naming alert.identifier."""
    await post_cap(api, cap_doc())
    status, problem = await post_cap(api, cap_doc(en=False).replace("橙色".encode(), "红色".encode()))
    assert status == 409
    assert [e["field"] for e in problem["errors"]] == ["alert.identifier"]
    assert await alert_count(api) == 1


async def test_a_cap_update_and_cancel_act_on_the_alert_published_as_cap(api: Api) -> None:
    """An Update names the CAP alert by its references and supersedes it; a Cancel of the update cancels that."""
    original = cap_doc()
    _, alert = await post_cap(api, original)
    update = cap_doc(identifier="14000000100000_20261203090000_0", msg_type="Update",
                     sent="2026-12-03T09:00:00+08:00", references=reference(original))
    status, updated = await post_cap(api, update)
    assert status == 202, updated
    assert (await alert_json(api, alert["id"]))["status"] == "superseded"
    assert (await alert_json(api, updated["id"]))["references"] == alert["id"]
    cancel = cap_doc(identifier="14000000100000_20261203100000_0", msg_type="Cancel",
                     sent="2026-12-03T10:00:00+08:00", references=reference(update))
    status, notice = await post_cap(api, cancel)
    assert status == 202, notice
    assert (await alert_json(api, updated["id"]))["status"] == "cancelled"


async def test_an_update_naming_no_known_alert_is_refused(api: Api) -> None:
    """References to alerts this service never saw: 422 on alert.references, nothing stored."""
    status, body = await post_cap(api, cap_doc(msg_type="Update",
                                               references=f"{SENDER},unknown-1,2026-12-01T08:00:00+08:00"))
    assert status == 422
    assert [e["field"] for e in body["errors"]] == ["alert.references"]
    assert await alert_count(api) == 0


async def test_an_exercise_is_recorded_and_sent_to_no_one(api: Api) -> None:
    """Exercise: 202 {id, targeted 0, status exercise}; no delivery, not public, no CAP page of its own."""
    await api.subscriber(region="140402", groups=["elderly"])
    status, body = await post_cap(api, cap_doc(status="Exercise"))
    assert status == 202, body
    assert body == {"id": body["id"], "targeted": 0, "status": "exercise"}
    deliveries = await api.client.get(f"/v1/alerts/{body['id']}/deliveries", headers=api.auth())
    assert (await deliveries.json())["total"] == 0
    listed = await api.client.get("/disclosures.json")
    assert (await listed.json())["total"] == 0
    assert (await api.client.get(f"/disclosures/{body['id']}/cap")).status == 404
    exercise = parse_cap(await get_cap(api, f"/v1/alerts/{body['id']}/cap", api.auth()))
    assert exercise.status.value == "Exercise"


async def test_an_exercise_cancel_leaves_the_actual_alert_alone(api: Api) -> None:
    """A Cancel sent as an Exercise is recorded, and the Actual alert it names stays in force."""
    original = cap_doc()
    _, alert = await post_cap(api, original)
    status, body = await post_cap(api, cap_doc(identifier="drill-1", status="Exercise", msg_type="Cancel",
                                               references=reference(original)))
    assert (status, body["status"]) == (202, "exercise")
    assert (await alert_json(api, alert["id"]))["status"] == "active"


async def test_the_catalogue_refuses_an_unknown_region_code(api: Api) -> None:
    """Valid CAP naming a region the catalogue does not have: 422 on regions, nothing stored."""
    data = cap_doc().replace(b"<value>140411</value>", b"<value>110101</value>")
    status, body = await post_cap(api, data)
    assert status == 422
    assert [e["field"] for e in body["errors"]] == ["regions"]
    assert await alert_count(api) == 0


async def test_broken_cap_is_refused_naming_the_element(api: Api) -> None:
    """Well-formed XML that breaks CAP (an unknown status) is 422 with the element named."""
    status, body = await post_cap(api, cap_doc(status="Rehearsal"))
    assert status == 422
    assert [e["field"] for e in body["errors"]] == ["alert.status"]


async def test_a_publisher_publishes_cap_only_within_its_topic_patterns(api: Api) -> None:
    """The key's topic patterns apply to CAP: env.* may publish the pollution warning, not a transit one."""
    status, _ = await post_cap(api, cap_doc(), Role.PUBLISHER)
    assert status == 202
    other = cap_doc(identifier="transit-1", en=False).replace(b"env.heavy-pollution", b"transit.fare-change")
    status, body = await post_cap(api, other, Role.PUBLISHER)
    assert status == 403, body


@pytest.mark.timeout(20)  # refused before any expansion: a bound, not a speed assertion
@pytest.mark.parametrize("kind", ["internal entity", "billion laughs", "external entity", "external DTD",
                                  "parameter entity"])
async def test_hostile_xml_is_refused_with_nothing_stored(api: Api, tmp_path: Path, kind: str) -> None:
    """Entities, billion laughs and external DTDs through the route: 400, nothing read, nothing stored."""
    secret = tmp_path / "secret.txt"
    secret.write_text("TOP-SECRET-CONTENT", encoding="utf-8")
    status, body = await post_cap(api, hostile_documents(secret)[kind])
    assert status == 400, body
    assert "DTD" in body["detail"] and "TOP-SECRET" not in str(body)
    assert await alert_count(api) == 0


async def test_text_that_is_not_xml_is_a_bad_request(api: Api) -> None:
    """A body that does not parse as XML: 400."""
    status, body = await post_cap(api, b"<alert><unclosed>")
    assert status == 400, body


# ---------------------------------------------------------------- CAP out


async def test_our_alert_reads_back_as_valid_cap(api: Api) -> None:
    """A JSON alert's CAP: valid against the OASIS schema, its id as identifier, parsed back to the same alert."""
    status, body = await api.publish(level="orange", regions=["140402"], groups=["elderly"], instruction="减少外出")
    assert status == 202
    data = await get_cap(api, f"/v1/alerts/{body['id']}/cap", api.auth())
    doc = parse_cap(data)
    assert (doc.identifier, doc.sender, doc.status.value) == (body["id"], "127.0.0.1", "Actual")
    back = import_cap(doc).alert
    assert (back.topic, back.regions, back.groups, back.level) == ("env.heavy-pollution", ["140402"], ["elderly"],
                                                                   Level.ORANGE)
    assert doc.infos[0].web == f"http://127.0.0.1:8080/disclosures/{body['id']}"


async def test_a_sender_code_gives_gbt_identifiers(make_api: ApiFactory) -> None:
    """With [cap] sender and sender_code, our identifiers are GB/T 35965.1: unit, entry time, serial."""
    api = await make_api(cap={"sender": "notify.changzhi.gov.cn", "sender_code": SENDER_CODE})
    before = int(time.time())
    ids = [(await api.publish(headline=f"预警{n}"))[1]["id"] for n in range(2)]
    docs = [parse_cap(await get_cap(api, f"/v1/alerts/{i}/cap", api.auth())) for i in ids]
    parts = [parse_gbt_identifier(doc.identifier) for doc in docs]
    assert all(p is not None and p.unit == SENDER_CODE and p.entered.timestamp() >= before for p in parts)
    assert len({doc.identifier for doc in docs}) == 2
    assert {doc.sender for doc in docs} == {"notify.changzhi.gov.cn"}


async def test_an_imported_alert_keeps_its_identifier_and_english(api: Api) -> None:
    """Read back, an imported alert says its original sender, identifier and sent time, with both info blocks."""
    original = cap_doc()
    _, body = await post_cap(api, original)
    doc = parse_cap(await get_cap(api, f"/v1/alerts/{body['id']}/cap", api.auth()))
    assert reference(original) == f"{doc.sender},{doc.identifier},{doc.sent.isoformat()}"
    assert [info.language for info in doc.infos] == ["zh-CN", "en"]
    assert doc.infos[1].headline == "Orange heavy pollution warning for Changzhi"
    assert doc.infos[0].certainty == "Observed"


async def test_an_update_read_back_names_what_it_updates(api: Api) -> None:
    """Our own update's CAP is an Update whose references name the alert's own CAP identity."""
    _, first = await api.publish()
    _, update = await api.publish(msg_type="update", references=first["id"], headline="预警升级")
    doc = parse_cap(await get_cap(api, f"/v1/alerts/{update['id']}/cap", api.auth()))
    assert doc.msg_type.value == "Update"
    assert [(r.sender, r.identifier) for r in doc.references] == [("127.0.0.1", first["id"])]


async def test_the_public_cap_needs_no_key_and_shows_only_public_alerts(api: Api) -> None:
    """GET /disclosures/{id}/cap serves a public alert's CAP to anyone; a non-public alert is 404."""
    _, public = await api.publish()
    _, private = await api.publish(public=False, headline="内部通知")
    doc = parse_cap(await get_cap(api, f"/disclosures/{public['id']}/cap"))
    assert doc.identifier == public["id"]
    assert (await api.client.get(f"/disclosures/{private['id']}/cap")).status == 404
    assert (await api.client.get("/disclosures/no-such-id/cap")).status == 404


async def test_the_cap_feed_links_every_public_actual_message_to_its_cap(api: Api) -> None:
    """feed.cap.atom: one entry per public Actual message, its id and cap+xml link the CAP document."""
    _, public = await api.publish()
    await api.publish(public=False, headline="内部通知")
    await post_cap(api, cap_doc(identifier="drill-2", status="Exercise"))
    response = await api.client.get("/disclosures/feed.cap.atom")
    assert response.status == 200 and response.content_type == "application/atom+xml"
    feed = ET.fromstring(await response.read())  # noqa: S314 - our own feed, parsed to check it
    entries = feed.findall(f"{ATOM}entry")
    cap_url = f"http://127.0.0.1:8080/disclosures/{public['id']}/cap"
    assert [e.findtext(f"{ATOM}id") for e in entries] == [cap_url]
    link = entries[0].find(f"{ATOM}link[@type='{CAP_MEDIA_TYPE}']")
    assert link is not None and link.get("href") == cap_url
    assert entries[0].findtext(f"{{{CAP_NS}}}status") == "Actual"
    await get_cap(api, f"/disclosures/{public['id']}/cap")  # the link resolves to a valid document
