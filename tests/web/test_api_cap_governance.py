"""CAP 1.2 documents under the governance rules: they record the publisher's department, wait for approval like
JSON alerts, are one department's own (another's copy is refused without naming its alert), and are audited."""

from __future__ import annotations

import pytest

from notifier.models import Role
from tests.web.conftest import Api, ApiFactory
from tests.web.test_api_cap import cap_doc, post_cap

pytestmark = pytest.mark.both_backends

SEVERE_HELD = {"approval": {"severities": ["severe"]}}  # the samples' warning is Severe


async def test_a_cap_document_waits_for_approval_like_json(make_api: ApiFactory) -> None:
    """A Severe CAP Alert under `[approval] severities = ["severe"]` is pending_approval and sends nothing."""
    api = await make_api(**SEVERE_HELD)
    await api.subscriber()
    status, accepted = await post_cap(api, cap_doc(), Role.PUBLISHER)
    assert (status, accepted["status"]) == (202, "pending_approval")
    deliveries = await (await api.client.get(f"/v1/alerts/{accepted['id']}/deliveries", headers=api.auth())).json()
    assert deliveries["total"] == 0


async def test_a_cap_exercise_is_never_held(make_api: ApiFactory) -> None:
    """An Exercise goes to no one anyway: it is recorded as an exercise, not held for approval."""
    api = await make_api(**SEVERE_HELD)
    status, accepted = await post_cap(api, cap_doc(status="Exercise"), Role.PUBLISHER)
    assert (status, accepted["status"]) == (202, "exercise")


async def test_a_cap_alert_records_the_publishers_department_and_is_audited(api: Api) -> None:
    """The publisher's CAP alert is 市环保局's, and its publication is one audit entry naming the key."""
    _, accepted = await post_cap(api, cap_doc(), Role.PUBLISHER)
    alert = await (await api.client.get(f"/v1/alerts/{accepted['id']}", headers=api.auth())).json()
    assert alert["department"] == "市环保局"
    entries = (await (await api.client.get("/v1/audit?action=alert.publish", headers=api.auth())).json())["items"]
    assert [(e["object"], e["role"]) for e in entries] == [(f"alert:{accepted['id']}", "publisher")]


async def test_another_departments_copy_of_a_cap_document_is_refused_without_naming_its_alert(api: Api) -> None:
    """The same document sent again by another department is 409 on alert.identifier, and the answer does not
    carry the first department's alert id; the first department's repeat still returns its alert."""
    document = cap_doc()  # one document, byte for byte (its expiry counts from now: built again, it could differ)
    _, first = await post_cap(api, document, Role.PUBLISHER)
    wide = await api.new_key(Role.PUBLISHER, ["env.*"], "市卫计委")
    response = await api.client.post("/v1/alerts", data=document, headers={
        "Authorization": f"Bearer {wide}", "Content-Type": "application/cap+xml"})
    assert response.status == 409
    problem = await response.json()
    assert [e["field"] for e in problem["errors"]] == ["alert.identifier"] and first["id"] not in str(problem)
    status, again = await post_cap(api, document, Role.PUBLISHER)
    assert (status, again["id"]) == (200, first["id"])


async def test_a_publisher_reads_only_its_own_departments_cap(api: Api) -> None:
    """GET /v1/alerts/{id}/cap of another department's alert answers a publisher 404."""
    _, accepted = await post_cap(api, cap_doc())  # admin: the topic's department, 市环保局
    other = await api.new_key(Role.PUBLISHER, ["transit.*"], "市交通局")
    own = await api.client.get(f"/v1/alerts/{accepted['id']}/cap", headers=api.auth(Role.PUBLISHER))
    foreign = await api.client.get(f"/v1/alerts/{accepted['id']}/cap", headers={"Authorization": f"Bearer {other}"})
    assert (own.status, foreign.status) == (200, 404)
