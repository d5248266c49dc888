"""Departments over the HTTP API (SPEC "Departments and approval"): every alert records its department, and a
publisher reads, lists and follows only its own bureau's alerts — another bureau's answer 404 in every form."""

from __future__ import annotations

import pytest

from notifier.errors import InvalidInput
from notifier.keys import create_key
from notifier.models import Role
from tests.web.conftest import Api, alert_body

pytestmark = pytest.mark.both_backends

TRANSIT = "市交通局"


def bearer(raw: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {raw}"}


async def _transit_alert(api: Api) -> str:
    """An alert of the transit bureau, published by its own publisher key."""
    transit = await api.new_key(Role.PUBLISHER, ["transit.*"], TRANSIT)
    response = await api.client.post("/v1/alerts", json=alert_body(topic="transit.fare-change"),
                                     headers=bearer(transit))
    assert response.status == 202, await response.text()
    alert_id: str = (await response.json())["id"]
    return alert_id


async def test_an_alert_records_the_publishing_keys_department(api: Api) -> None:
    """A publisher's alert records the publisher's department."""
    _, accepted = await api.publish(Role.PUBLISHER)
    alert = await (await api.client.get(f"/v1/alerts/{accepted['id']}", headers=api.auth())).json()
    assert alert["department"] == "市环保局"


async def test_an_admin_keys_alert_records_the_topics_department(api: Api) -> None:
    """An admin has no department: its alert records the topic's responsible department."""
    _, accepted = await api.publish(topic="transit.fare-change")
    alert = await (await api.client.get(f"/v1/alerts/{accepted['id']}", headers=api.auth())).json()
    assert alert["department"] == TRANSIT


async def test_a_publisher_lists_only_its_own_departments_alerts(api: Api) -> None:
    """GET /v1/alerts answers a publisher 200 with its bureau's alerts only, and counts only those."""
    transit_id = await _transit_alert(api)
    _, own = await api.publish(Role.PUBLISHER)
    response = await api.client.get("/v1/alerts", headers=api.auth(Role.PUBLISHER))
    assert response.status == 200
    page = await response.json()
    assert [a["id"] for a in page["items"]] == [own["id"]] and page["total"] == 1
    everything = await (await api.client.get("/v1/alerts", headers=api.auth())).json()
    assert {a["id"] for a in everything["items"]} == {own["id"], transit_id}


@pytest.mark.parametrize("path", [
    "", "/coverage", "/coverage?format=csv", "/coverage/breakdown", "/coverage/breakdown?format=csv",
    "/deliveries", "/deliveries?format=csv"])
async def test_another_departments_alert_is_404_in_every_form(api: Api, path: str) -> None:
    """The alert, its coverage, breakdown and deliveries, as JSON or CSV, of another bureau answer 404."""
    transit_id = await _transit_alert(api)
    response = await api.client.get(f"/v1/alerts/{transit_id}{path}", headers=api.auth(Role.PUBLISHER))
    assert response.status == 404
    assert (await response.json())["detail"] == "no such alert"


async def test_a_publisher_cannot_cancel_another_departments_alert(api: Api) -> None:
    """Cancelling another bureau's alert is 404, and the alert stays in force."""
    transit_id = await _transit_alert(api)
    response = await api.client.post(f"/v1/alerts/{transit_id}/cancel", headers=api.auth(Role.PUBLISHER))
    assert response.status == 404
    alert = await (await api.client.get(f"/v1/alerts/{transit_id}", headers=api.auth())).json()
    assert alert["status"] == "active"


async def test_an_update_of_another_departments_alert_is_an_unknown_reference(api: Api) -> None:
    """A key of the environment bureau allowed every topic still cannot update the transit bureau's alert: the
    reference is refused as if that alert did not exist (422 on references), and nothing is published."""
    transit_id = await _transit_alert(api)
    wide = await api.new_key(Role.PUBLISHER, ["*"])
    response = await api.client.post("/v1/alerts", headers=bearer(wide), json=alert_body(
        topic="transit.fare-change", msg_type="update", references=transit_id))
    assert response.status == 422
    assert [e["field"] for e in (await response.json())["errors"]] == ["references"]
    alert = await (await api.client.get(f"/v1/alerts/{transit_id}", headers=api.auth())).json()
    assert alert["status"] == "active"


async def test_a_publisher_cannot_publish_to_another_departments_topics(api: Api) -> None:
    """The environment bureau's key (env.*) cannot publish a transit alert: 403, nothing stored."""
    status, _ = await api.publish(Role.PUBLISHER, topic="transit.fare-change")
    assert status == 403
    total = (await (await api.client.get("/v1/alerts", headers=api.auth())).json())["total"]
    assert total == 0


async def test_idempotency_keys_are_scoped_per_department(api: Api) -> None:
    """Two bureaus using the same Idempotency-Key both publish (no 409 between bureaus); a repeat within one
    bureau still returns its first alert."""
    transit = await api.new_key(Role.PUBLISHER, ["transit.*"], TRANSIT)
    headers = {"Idempotency-Key": "2026-12-01-001"}
    env_status, env = await api.publish(Role.PUBLISHER, headers=headers)
    response = await api.client.post("/v1/alerts", json=alert_body(topic="transit.fare-change"),
                                     headers={**bearer(transit), **headers})
    assert (env_status, response.status) == (202, 202)
    assert (await response.json())["id"] != env["id"]
    again_status, again = await api.publish(Role.PUBLISHER, headers=headers)
    assert (again_status, again["id"]) == (200, env["id"])


async def test_a_publisher_key_needs_a_department_the_catalogue_names(api: Api) -> None:
    """A publisher key without a department, or with one no topic names, is refused with the nearest name."""
    store = api.service.store
    with pytest.raises(InvalidInput) as missing:
        await create_key(store, Role.PUBLISHER, ["env.*"])
    assert [e.field for e in missing.value.errors] == ["department"]
    with pytest.raises(InvalidInput) as unknown:
        await create_key(store, Role.PUBLISHER, ["env.*"], department="市环保")
    assert "did you mean '市环保局'?" in unknown.value.errors[0].message
    with pytest.raises(InvalidInput):
        await create_key(store, Role.ADMIN, department="市环保局")


async def test_a_publishers_period_coverage_sums_its_own_department_only(api: Api) -> None:
    """GET /v1/coverage for a publisher counts its bureau's alerts, even when it names another department."""
    await _transit_alert(api)
    await api.publish(Role.PUBLISHER)
    for query in ("", "?department=市交通局"):
        body = await (await api.client.get(f"/v1/coverage{query}", headers=api.auth(Role.PUBLISHER))).json()
        assert body["total"]["alerts"] == 1 and set(body["by_department"]) == {"市环保局"}
    everything = await (await api.client.get("/v1/coverage", headers=api.auth())).json()
    assert everything["total"]["alerts"] == 2
