"""Who may do what: bearer keys, roles and publisher topic patterns, as the HTTP API enforces them."""

from __future__ import annotations

import pytest

from notifier.keys import revoke_key
from notifier.models import Role
from tests.web.conftest import Api, alert_body, subscriber_body

pytestmark = pytest.mark.both_backends


async def test_missing_key_is_401_problem_with_bearer_challenge(api: Api) -> None:
    """A call without Authorization is a 401 problem+json carrying WWW-Authenticate: Bearer."""
    response = await api.client.get("/v1/topics")
    assert response.status == 401
    assert response.content_type == "application/problem+json"
    assert response.headers["WWW-Authenticate"].startswith("Bearer")
    problem = await response.json()
    assert problem["status"] == 401 and problem["type"] and problem["title"] and problem["detail"]


async def test_unknown_key_is_401(api: Api) -> None:
    """A key the service never issued is a 401 problem."""
    response = await api.client.get("/v1/topics", headers={"Authorization": "Bearer ntf_adm_made-up"})
    assert response.status == 401
    assert response.content_type == "application/problem+json"


async def test_revoked_key_is_401(api: Api) -> None:
    """A key that worked stops working once revoked."""
    raw = await api.new_key(Role.ADMIN)
    assert (await api.client.get("/v1/topics", headers={"Authorization": f"Bearer {raw}"})).status == 200
    await revoke_key(api.service.store, raw)
    response = await api.client.get("/v1/topics", headers={"Authorization": f"Bearer {raw}"})
    assert response.status == 401
    assert response.content_type == "application/problem+json"


async def test_a_publish_with_a_key_never_issued_is_401_and_stores_nothing(api: Api) -> None:
    """Publishing reads the key with the catalogue: a made-up key is still refused, and no alert is kept."""
    response = await api.client.post("/v1/alerts", json=alert_body(),
                                     headers={"Authorization": "Bearer ntf_pub_made-up"})
    assert response.status == 401
    assert (await (await api.client.get("/v1/alerts", headers=api.auth())).json())["total"] == 0


async def test_a_publish_with_a_revoked_key_is_401_and_stores_nothing(api: Api) -> None:
    """A publisher's key revoked stops its publishing at once."""
    raw = await api.new_key(Role.PUBLISHER, ["env.*"])
    await revoke_key(api.service.store, raw)
    response = await api.client.post("/v1/alerts", json=alert_body(), headers={"Authorization": f"Bearer {raw}"})
    assert response.status == 401
    assert (await response.json())["detail"] == "this API key has been revoked"
    assert (await (await api.client.get("/v1/alerts", headers=api.auth())).json())["total"] == 0


async def test_a_key_revoked_after_it_published_publishes_no_more(api: Api) -> None:
    """The service knows a key that has published; revoked since (here in the store, as `notifier keys revoke`
    in another process does), its next publish is 401 all the same and stores nothing."""
    raw = await api.new_key(Role.PUBLISHER, ["env.*"])
    headers = {"Authorization": f"Bearer {raw}"}
    assert (await api.client.post("/v1/alerts", json=alert_body(), headers=headers)).status == 202
    await revoke_key(api.service.store, raw)
    response = await api.client.post("/v1/alerts", json=alert_body(headline="再次预警"), headers=headers)
    assert response.status == 401
    assert (await response.json())["detail"] == "this API key has been revoked"
    assert (await (await api.client.get("/v1/alerts", headers=api.auth())).json())["total"] == 1


async def test_a_topic_added_after_a_keys_last_publish_can_be_published_to_at_once(api: Api) -> None:
    """A publisher publishes, an admin adds a topic in its patterns, and the publisher's next alert on it is
    accepted: what the service knew of the catalogue from the first publish does not refuse it."""
    raw = await api.new_key(Role.PUBLISHER, ["env.*"])
    headers = {"Authorization": f"Bearer {raw}"}
    assert (await api.client.post("/v1/alerts", json=alert_body(), headers=headers)).status == 202
    topic = {"key": "env.sandstorm", "name": "沙尘天气", "domain": "environment", "department": "市环保局",
             "channels": ["sms"]}
    assert (await api.client.post("/v1/topics", json=topic, headers=api.auth())).status == 201
    response = await api.client.post("/v1/alerts", json=alert_body(topic="env.sandstorm"), headers=headers)
    assert response.status == 202, await response.text()


async def test_other_authorization_schemes_are_401(api: Api) -> None:
    """Basic credentials are not an API key: 401."""
    response = await api.client.get("/v1/topics", headers={"Authorization": "Basic YWRtaW46YWRtaW4="})
    assert response.status == 401


async def test_viewer_publishing_is_403(api: Api) -> None:
    """A viewer key may read but not publish: 403 problem."""
    response = await api.client.post("/v1/alerts", json=alert_body(), headers=api.auth(Role.VIEWER))
    assert response.status == 403
    assert response.content_type == "application/problem+json"


async def test_viewer_is_refused_before_its_body_is_read(api: Api) -> None:
    """A viewer posting a bad alert body still gets 403, not a validation answer about the body."""
    response = await api.client.post("/v1/alerts", json={"nonsense": 1}, headers=api.auth(Role.VIEWER))
    assert response.status == 403


async def test_a_viewer_refused_publishing_cannot_keep_routine_sending_paused(api: Api) -> None:
    """A publish refused for its key's role suspends the pause a key check brings, as an unknown key does
    (`LifeSafetyWindow.tentatively`): viewers' requests cannot hold back routine sending."""
    response = await api.client.post("/v1/alerts", json=alert_body(), headers=api.auth(Role.VIEWER))
    assert response.status == 403
    window = api.service.dispatcher.window
    with window.tentatively():
        assert not window.is_open


async def test_publisher_cannot_create_subscribers(api: Api) -> None:
    """Creating subscribers is for admins: a publisher gets 403."""
    response = await api.client.post("/v1/subscribers", json=subscriber_body(), headers=api.auth(Role.PUBLISHER))
    assert response.status == 403


async def test_publisher_lists_alerts_of_its_department(api: Api) -> None:
    """A publisher may list alerts (SPEC: its department's only; tests/web/test_api_departments.py has the rest)."""
    response = await api.client.get("/v1/alerts", headers=api.auth(Role.PUBLISHER))
    assert response.status == 200


async def test_any_role_reads_an_alert(api: Api) -> None:
    """A viewer and a publisher (of the alert's department) can both read an alert by id."""
    _, accepted = await api.publish()
    for role in (Role.VIEWER, Role.PUBLISHER):
        response = await api.client.get(f"/v1/alerts/{accepted['id']}", headers=api.auth(role))
        assert response.status == 200


async def test_healthz_needs_no_key(api: Api) -> None:
    """/healthz answers {"status": "ok"} without a key once the store answers."""
    response = await api.client.get("/healthz")
    assert response.status == 200
    assert await response.json() == {"status": "ok"}


@pytest.mark.parametrize("path", ["/v1/alerts", "/v1/alerts/made-up/cancel", "/v1/alerts/made-up/approve"])
async def test_a_refused_key_on_a_route_that_releases_alerts_stops_pausing_routine_sending(api: Api,
                                                                                          path: str) -> None:
    """Publish, cancel and approve check their key with routine sending paused (the life-safety window, held
    tentatively): one refused key there suspends that pause for a second, so that requests with bad keys cannot
    keep routine sending stopped."""
    window = api.service.dispatcher.window
    response = await api.client.post(path, json={}, headers={"Authorization": "Bearer ntf_adm_made-up"})
    assert response.status == 401
    with window.tentatively():
        assert not window.is_open
