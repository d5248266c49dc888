"""Publishing, reading, cancelling alerts and following their coverage and deliveries over the HTTP API."""

from __future__ import annotations

import pytest

from notifier.models import Role
from tests.web.conftest import MOBILE, MOBILE_DIGITS, Api, alert_body

pytestmark = pytest.mark.both_backends


async def _alerts_total(api: Api) -> int:
    response = await api.client.get("/v1/alerts", headers=api.auth())
    total: int = (await response.json())["total"]
    return total


async def test_publish_answers_202_with_id_targeted_and_status(api: Api) -> None:
    """A new alert is accepted with its id, how many subscribers it targets and its status."""
    await api.subscriber()
    status, body = await api.publish()
    assert status == 202
    assert set(body) == {"id", "targeted", "status"}
    assert body["targeted"] == 1 and body["status"] == "active"


async def test_publish_points_to_the_new_alert(api: Api) -> None:
    """The 202 answer's Location header names the new alert, which can then be read."""
    response = await api.client.post("/v1/alerts", json=alert_body(), headers=api.auth())
    location = response.headers["Location"]
    alert = await (await api.client.get(location, headers=api.auth())).json()
    assert alert["id"] == (await response.json())["id"]


async def test_repeating_an_idempotency_key_returns_the_same_alert_with_200(api: Api) -> None:
    """Retrying a publish with the same Idempotency-Key gives 200 and the first alert's id, creating nothing."""
    first_status, first = await api.publish(headers={"Idempotency-Key": "bureau-2026-001"})
    second_status, second = await api.publish(headers={"Idempotency-Key": "bureau-2026-001"})
    assert (first_status, second_status) == (202, 200)
    assert second == first
    assert await _alerts_total(api) == 1


async def test_idempotency_key_in_the_body_works_like_the_header(api: Api) -> None:
    """The body's idempotency_key also makes a repeat return the same alert."""
    _, first = await api.publish(idempotency_key="k-1")
    status, second = await api.publish(idempotency_key="k-1")
    assert status == 200 and second["id"] == first["id"]


async def test_reusing_an_idempotency_key_with_another_body_is_409(api: Api) -> None:
    """The same key with a different alert is a conflict, not a silent repeat."""
    await api.publish(headers={"Idempotency-Key": "k-2"})
    status, problem = await api.publish(headers={"Idempotency-Key": "k-2"}, headline="另一条")
    assert status == 409
    assert problem["status"] == 409 and problem["title"] == "Conflict"


async def test_header_and_body_idempotency_keys_that_differ_are_422(api: Api) -> None:
    """An Idempotency-Key header that disagrees with the body's key is refused, naming idempotency_key."""
    status, problem = await api.publish(headers={"Idempotency-Key": "a"}, idempotency_key="b")
    assert status == 422
    assert [e["field"] for e in problem["errors"]] == ["idempotency_key"]


async def test_publisher_within_its_pattern_may_publish(api: Api) -> None:
    """A publisher scoped to env.* publishes to env.heavy-pollution."""
    status, _ = await api.publish(Role.PUBLISHER)
    assert status == 202


async def test_publisher_outside_its_pattern_is_403_and_nothing_is_created(api: Api) -> None:
    """A publisher scoped to env.* cannot publish to transit.fare-change, and no alert appears."""
    status, problem = await api.publish(Role.PUBLISHER, topic="transit.fare-change")
    assert status == 403 and problem["status"] == 403
    assert await _alerts_total(api) == 0


async def test_unknown_topic_is_422_naming_topic(api: Api) -> None:
    """Publishing to a topic not in the catalogue is refused with a field error on topic."""
    status, problem = await api.publish(topic="env.no-such-topic")
    assert status == 422
    assert [e["field"] for e in problem["errors"]] == ["topic"]


async def test_unknown_region_is_422_naming_regions(api: Api) -> None:
    """A six-digit code that is not a region of the catalogue is refused with a field error on regions."""
    status, problem = await api.publish(regions=["999999"])
    assert status == 422
    assert [e["field"] for e in problem["errors"]] == ["regions"]


async def test_unknown_group_is_422_naming_groups(api: Api) -> None:
    """A group code not in the catalogue is refused with a field error on groups, and nothing is created."""
    status, problem = await api.publish(groups=["martians"])
    assert status == 422
    assert [e["field"] for e in problem["errors"]] == ["groups"]
    assert await _alerts_total(api) == 0


async def test_template_syntax_in_a_headline_is_stored_literally(api: Api) -> None:
    """A headline containing {{ 7*7 }} comes back exactly as sent, not evaluated."""
    _, accepted = await api.publish(headline="{{ 7*7 }} 测试", body="{% for x in y %}{{ x }}{% endfor %}")
    alert = await (await api.client.get(f"/v1/alerts/{accepted['id']}", headers=api.auth())).json()
    assert alert["headline"] == "{{ 7*7 }} 测试"
    assert alert["body"] == "{% for x in y %}{{ x }}{% endfor %}"


async def test_unknown_alert_is_404_problem(api: Api) -> None:
    """Reading an alert id that does not exist is a 404 problem."""
    response = await api.client.get("/v1/alerts/nope", headers=api.auth(Role.VIEWER))
    assert response.status == 404
    assert response.content_type == "application/problem+json"


async def test_alert_listing_is_paged_newest_first(api: Api) -> None:
    """Listing with limit=2 gives two alerts, the newest first, a next_cursor and the total."""
    ids = [(await api.publish(headline=f"预警 {i}"))[1]["id"] for i in range(3)]
    first = await (await api.client.get("/v1/alerts?limit=2", headers=api.auth(Role.VIEWER))).json()
    assert [a["id"] for a in first["items"]] == ids[::-1][:2]
    assert first["total"] == 3 and first["next_cursor"]
    second = await (await api.client.get("/v1/alerts", params={"limit": 2, "cursor": first["next_cursor"]},
                                         headers=api.auth(Role.VIEWER))).json()
    assert [a["id"] for a in second["items"]] == [ids[0]]
    assert second["next_cursor"] is None


async def test_cancel_stops_pending_deliveries(api: Api) -> None:
    """Cancelling an alert answers its id, status cancelled and how many pending deliveries were stopped."""
    await api.subscriber()
    _, accepted = await api.publish()
    response = await api.client.post(f"/v1/alerts/{accepted['id']}/cancel", headers=api.auth())
    assert response.status == 200
    body = await response.json()
    assert set(body) == {"id", "status", "cancelled_deliveries", "notice_id"}
    assert (body["id"], body["status"], body["cancelled_deliveries"]) == (accepted["id"], "cancelled", 1)


async def test_publisher_cannot_cancel_outside_its_pattern(api: Api) -> None:
    """A publisher scoped to env.* cannot cancel an alert on transit.fare-change."""
    _, accepted = await api.publish(topic="transit.fare-change")
    response = await api.client.post(f"/v1/alerts/{accepted['id']}/cancel", headers=api.auth(Role.PUBLISHER))
    assert response.status == 403


async def test_coverage_has_the_spec_keys(api: Api) -> None:
    """The coverage of an alert carries every key the SPEC defines."""
    await api.subscriber()
    _, accepted = await api.publish()
    response = await api.client.get(f"/v1/alerts/{accepted['id']}/coverage", headers=api.auth())
    coverage = await response.json()
    assert {"alert_id", "targeted", "reached", "accepted", "coverage_rate", "accepted_rate", "by_channel",
            "by_region", "by_group", "cells", "time_to_reach"} <= set(coverage)
    assert set(coverage["time_to_reach"]) == {"p50", "p90", "p99"}
    assert {"attempted", "sent", "delivered", "failed", "pending", "reach_rate"} <= set(coverage["by_channel"]["sms"])
    assert coverage["targeted"] == 1 and coverage["by_region"]["140402"]["targeted"] == 1


async def test_viewer_sees_no_figure_of_an_alert_under_k(api: Api) -> None:
    """For a viewer, an alert with fewer than 5 targeted shows suppressed: true and no figure at all."""
    await api.subscriber()
    _, accepted = await api.publish()
    response = await api.client.get(f"/v1/alerts/{accepted['id']}/coverage", headers=api.auth(Role.VIEWER))
    coverage = await response.json()
    assert coverage["suppressed"] is True
    assert (coverage["targeted"], coverage["reached"], coverage["accepted"]) == (None, None, None)
    assert (coverage["by_region"], coverage["by_channel"], coverage["cells"]) == ({}, {}, [])


async def test_coverage_of_unknown_alert_is_404(api: Api) -> None:
    """Coverage of an alert that does not exist is a 404 problem."""
    response = await api.client.get("/v1/alerts/nope/coverage", headers=api.auth())
    assert response.status == 404


async def test_deliveries_show_masked_contacts_only(api: Api) -> None:
    """The delivery listing masks the mobile number (138****5678) and never contains the raw number."""
    await api.subscriber(subscriptions=[{"topic": "env.heavy-pollution", "channels": ["sms"]}])
    _, accepted = await api.publish()
    response = await api.client.get(f"/v1/alerts/{accepted['id']}/deliveries", headers=api.auth())
    text = await response.text()
    assert MOBILE_DIGITS not in text and MOBILE not in text
    page = await response.json()
    assert [d["contact"] for d in page["items"]] == ["138****5678"]


async def test_deliveries_are_paged_with_cursor_and_total(api: Api) -> None:
    """With policy all and two channels, limit=1 shows one delivery, a next_cursor and total 2."""
    await api.subscriber()
    _, accepted = await api.publish(policy="all")
    url = f"/v1/alerts/{accepted['id']}/deliveries"
    first = await (await api.client.get(url, params={"limit": 1}, headers=api.auth())).json()
    assert len(first["items"]) == 1 and first["total"] == 2 and first["next_cursor"]
    second = await (await api.client.get(url, params={"limit": 1, "cursor": first["next_cursor"]},
                                         headers=api.auth())).json()
    assert second["next_cursor"] is None
    assert {first["items"][0]["channel"], second["items"][0]["channel"]} == {"sms", "email"}


async def test_deliveries_filter_by_channel_and_status(api: Api) -> None:
    """status= and channel= narrow the delivery listing and its total."""
    await api.subscriber()
    _, accepted = await api.publish(policy="fallback")
    url = f"/v1/alerts/{accepted['id']}/deliveries"
    page = await (await api.client.get(url, params={"status": "skipped", "channel": "email"},
                                       headers=api.auth())).json()
    assert page["total"] == 1 and page["items"][0]["status"] == "skipped"


async def test_deliveries_with_a_bad_limit_are_422(api: Api) -> None:
    """limit=0 on the delivery listing is a 422 problem naming limit."""
    _, accepted = await api.publish()
    response = await api.client.get(f"/v1/alerts/{accepted['id']}/deliveries?limit=0", headers=api.auth())
    assert response.status == 422
    assert [e["field"] for e in (await response.json())["errors"]] == ["limit"]


async def test_publisher_cannot_list_deliveries(api: Api) -> None:
    """Delivery listings are for admins and viewers; a publisher gets 403."""
    _, accepted = await api.publish()
    response = await api.client.get(f"/v1/alerts/{accepted['id']}/deliveries", headers=api.auth(Role.PUBLISHER))
    assert response.status == 403


async def test_publish_takes_district_names_and_stores_codes(api: Api) -> None:
    """`"regions": ["城区"]` is accepted like 140402 (the import's rule), and the alert shows the code."""
    await api.subscriber()
    status, body = await api.publish(regions=["城区"], groups=["老年人"])
    assert status == 202 and body["targeted"] == 1
    alert = await (await api.client.get(f"/v1/alerts/{body['id']}", headers=api.auth())).json()
    assert (alert["regions"], alert["groups"]) == (["140402"], ["elderly"])


async def test_every_problem_of_an_alert_body_comes_in_one_answer(api: Api) -> None:
    """A wrong severity, an unknown topic and an unknown district are reported in the same 422."""
    status, problem = await api.publish(severity="huge", topic="env.no-such-topic", regions=["999999"])
    assert status == 422
    assert {e["field"] for e in problem["errors"]} == {"severity", "topic", "regions"}
