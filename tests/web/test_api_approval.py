"""Two-person release over the HTTP API (SPEC "Departments and approval"): alerts matching `[approval]` wait,
send nothing, and are released only by a second key of the same bureau or an admin; rejection and timeout end
them with a reason."""

from __future__ import annotations

import time
from typing import Any

import pytest

from notifier.models import Role
from tests.web.conftest import Api, ApiFactory, alert_body

pytestmark = pytest.mark.both_backends

RULES = {"severities": ["extreme"], "timeout": 600}
RED = {"severity": "extreme", "level": "red", "headline": "重污染天气红色预警"}


def bearer(raw: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {raw}"}


@pytest.fixture
async def held(make_api: ApiFactory) -> Api:
    """The app with `[approval] severities = ["extreme"]`, one subscriber in 城区."""
    api = await make_api(approval=RULES)
    await api.subscriber()
    return api


async def _pending(api: Api, **body: Any) -> str:
    status, accepted = await api.publish(Role.PUBLISHER, **{**RED, **body})
    assert status == 202 and accepted["status"] == "pending_approval", accepted
    alert_id: str = accepted["id"]
    return alert_id


async def _alert(api: Api, alert_id: str) -> dict[str, Any]:
    data: dict[str, Any] = await (await api.client.get(f"/v1/alerts/{alert_id}", headers=api.auth())).json()
    return data


async def _deliveries(api: Api, alert_id: str) -> int:
    page = await (await api.client.get(f"/v1/alerts/{alert_id}/deliveries", headers=api.auth())).json()
    total: int = page["total"]
    return total


async def test_a_matching_alert_waits_and_sends_nothing(held: Api) -> None:
    """202 with status pending_approval and the targeted it would have now; no delivery row exists."""
    status, accepted = await held.publish(Role.PUBLISHER, **RED)
    assert status == 202
    assert accepted == {"id": accepted["id"], "targeted": 1, "status": "pending_approval"}
    assert await _deliveries(held, accepted["id"]) == 0
    coverage = await (await held.client.get(f"/v1/alerts/{accepted['id']}/coverage", headers=held.auth())).json()
    assert coverage["targeted"] == 0  # nothing is frozen before approval


async def test_an_alert_the_rules_do_not_match_goes_out_at_once(held: Api) -> None:
    """A moderate alert is not held: active, with its deliveries queued."""
    status, accepted = await held.publish(Role.PUBLISHER)
    assert (status, accepted["status"]) == (202, "active")
    assert await _deliveries(held, accepted["id"]) == 2


async def test_the_author_cannot_approve_its_own_alert(held: Api) -> None:
    """The key that published the alert gets 403, and the alert still waits."""
    alert_id = await _pending(held)
    response = await held.client.post(f"/v1/alerts/{alert_id}/approve", headers=held.auth(Role.PUBLISHER))
    assert response.status == 403
    assert (await _alert(held, alert_id))["status"] == "pending_approval"


async def test_another_department_cannot_approve_or_see_it(held: Api) -> None:
    """A publisher of another bureau gets 404 on approve and reject, as on any read of the alert."""
    alert_id = await _pending(held)
    transit = bearer(await held.new_key(Role.PUBLISHER, ["transit.*"], "市交通局"))
    approve = await held.client.post(f"/v1/alerts/{alert_id}/approve", headers=transit)
    reject = await held.client.post(f"/v1/alerts/{alert_id}/reject", json={"reason": "不同意"}, headers=transit)
    assert (approve.status, reject.status) == (404, 404)
    assert (await _alert(held, alert_id))["status"] == "pending_approval"


async def test_a_viewer_cannot_approve(held: Api) -> None:
    """Viewers read; they do not decide (403)."""
    alert_id = await _pending(held)
    response = await held.client.post(f"/v1/alerts/{alert_id}/approve", headers=held.auth(Role.VIEWER))
    assert response.status == 403


async def test_a_second_key_of_the_bureau_approves_and_targets_are_frozen_then(held: Api) -> None:
    """Approved by another key of 市环保局: active, deliveries created, and a subscriber who signed up while it
    waited is among its targets (frozen at approval, not at publish)."""
    alert_id = await _pending(held)
    await held.subscriber(contacts={"email": "li.na@example.org"}, region="140411",
                          subscriptions=[{"topic": "env.heavy-pollution", "channels": ["email"]}])
    colleague = bearer(await held.new_key(Role.PUBLISHER, ["env.*"]))
    response = await held.client.post(f"/v1/alerts/{alert_id}/approve", headers=colleague)
    assert response.status == 200, await response.text()
    approved = await response.json()
    assert (approved["status"], approved["approval"], approved["targeted"]) == ("active", "approved", 2)
    assert approved["decided_by"] is not None
    assert await _deliveries(held, alert_id) == 3


async def test_an_admin_approves(held: Api) -> None:
    """An admin key may approve any bureau's alert."""
    alert_id = await _pending(held)
    response = await held.client.post(f"/v1/alerts/{alert_id}/approve", headers=held.auth())
    assert response.status == 200
    assert (await response.json())["status"] == "active"


async def test_an_alert_no_longer_pending_cannot_be_decided(held: Api) -> None:
    """Approving twice, or rejecting an approved alert, is 409."""
    alert_id = await _pending(held)
    assert (await held.client.post(f"/v1/alerts/{alert_id}/approve", headers=held.auth())).status == 200
    again = await held.client.post(f"/v1/alerts/{alert_id}/approve", headers=held.auth())
    reject = await held.client.post(f"/v1/alerts/{alert_id}/reject", json={"reason": "晚了"}, headers=held.auth())
    assert (again.status, reject.status) == (409, 409)


async def test_rejection_records_the_reason_and_sends_nothing(held: Api) -> None:
    """Rejected with a reason: status rejected, the reason kept, no delivery ever created."""
    alert_id = await _pending(held)
    response = await held.client.post(f"/v1/alerts/{alert_id}/reject", json={"reason": "监测数据未复核"},
                                      headers=held.auth())
    assert response.status == 200
    alert = await _alert(held, alert_id)
    assert (alert["status"], alert["approval"], alert["decision_reason"]) == ("rejected", "rejected", "监测数据未复核")
    assert await _deliveries(held, alert_id) == 0


async def test_a_reason_naming_a_contact_is_refused(held: Api) -> None:
    """A reason holding a mobile number is 422 on `reason` (it would go into the audit log); the alert waits."""
    alert_id = await _pending(held)
    response = await held.client.post(f"/v1/alerts/{alert_id}/reject", json={"reason": "请联系 13812345678"},
                                      headers=held.auth())
    assert response.status == 422
    assert [e["field"] for e in (await response.json())["errors"]] == ["reason"]
    assert (await _alert(held, alert_id))["status"] == "pending_approval"


async def test_no_decision_within_the_timeout_rejects_it(held: Api) -> None:
    """With the clock moved past [approval] timeout, the dispatcher's sweep rejects it with reason timeout."""
    alert_id = await _pending(held)
    dispatcher = held.service.dispatcher
    dispatcher.clock = lambda: time.time() + 599
    await dispatcher.run_once()
    assert (await _alert(held, alert_id))["status"] == "pending_approval"
    dispatcher._last_sweep = 0.0
    dispatcher.clock = lambda: time.time() + 601
    await dispatcher.run_once()
    alert = await _alert(held, alert_id)
    assert (alert["status"], alert["decision_reason"], alert["decided_by"]) == ("rejected", "timeout", "system")
    assert await _deliveries(held, alert_id) == 0


async def test_cancelling_a_pending_alert_sends_nothing(held: Api) -> None:
    """Cancelled while it waits: cancelled, withdrawn, no notice and no delivery."""
    alert_id = await _pending(held)
    response = await held.client.post(f"/v1/alerts/{alert_id}/cancel", headers=held.auth(Role.PUBLISHER))
    assert response.status == 200
    assert (await response.json())["notice_id"] is None
    alert = await _alert(held, alert_id)
    assert (alert["status"], alert["approval"]) == ("cancelled", "withdrawn")
    assert await _deliveries(held, alert_id) == 0


@pytest.mark.parametrize("decide", ["wait", "reject"])
async def test_a_pending_or_rejected_alert_cannot_be_updated(held: Api, decide: str) -> None:
    """An update of an alert waiting for approval, or of a rejected one, is 409."""
    alert_id = await _pending(held)
    if decide == "reject":
        await held.client.post(f"/v1/alerts/{alert_id}/reject", json={"reason": "否"}, headers=held.auth())
    status, _ = await held.publish(msg_type="update", references=alert_id)
    assert status == 409


async def test_a_pending_alert_is_not_in_the_public_column(held: Api) -> None:
    """Nothing waiting for approval (or rejected) appears on /disclosures."""
    alert_id = await _pending(held)
    rejected = await _pending(held, headline="另一条红色预警")
    await held.client.post(f"/v1/alerts/{rejected}/reject", json={"reason": "否"}, headers=held.auth())
    _, shown = await held.publish()
    listed = [item["id"] for item in (await (await held.client.get("/disclosures.json")).json())["items"]]
    assert listed == [shown["id"]]
    for hidden in (alert_id, rejected):
        assert (await held.client.get(f"/disclosures/{hidden}")).status == 404


async def test_an_alert_with_no_regions_counts_as_every_region(make_api: ApiFactory) -> None:
    """min_regions = 13: an alert for the whole city (no regions) waits; one for 城区 alone does not."""
    api = await make_api(approval={"min_regions": 13})
    _, citywide = await api.publish()
    _, one = await api.publish(regions=["140402"])
    assert (citywide["status"], one["status"]) == ("pending_approval", "active")


async def test_every_rule_given_must_match(make_api: ApiFactory) -> None:
    """severities and topics together: an extreme transit alert goes out, an extreme env alert waits."""
    api = await make_api(approval={"severities": ["extreme"], "topics": ["env.*"]})
    _, env = await api.publish(**RED)
    _, transit = await api.publish(**{**RED, "topic": "transit.fare-change"})
    assert (env["status"], transit["status"]) == ("pending_approval", "active")


async def test_an_update_waits_too_and_supersedes_only_when_approved(held: Api) -> None:
    """An extreme update of an active alert waits; its alert stays active until the update is approved."""
    _, original = await held.publish()
    status, update = await held.publish(Role.PUBLISHER, msg_type="update", references=original["id"], **RED)
    assert (status, update["status"]) == (202, "pending_approval")
    assert (await _alert(held, original["id"]))["status"] == "active"
    assert (await held.client.post(f"/v1/alerts/{update['id']}/approve", headers=held.auth())).status == 200
    assert (await _alert(held, original["id"]))["status"] == "superseded"


async def test_a_cancel_is_never_held(held: Api) -> None:
    """Withdrawing a warning does not wait: an extreme cancel goes through at once."""
    _, original = await held.publish()
    response = await held.client.post("/v1/alerts", headers=held.auth(), json=alert_body(
        msg_type="cancel", references=original["id"], **RED))
    assert response.status == 202
    assert (await _alert(held, original["id"]))["status"] == "cancelled"
