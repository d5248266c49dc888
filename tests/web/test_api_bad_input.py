"""Bad input gets a clear problem+json answer and changes nothing."""

from __future__ import annotations

import io
import json
from typing import Any

import pytest

from notifier.models import Role
from tests.web.conftest import EMAIL, MOBILE_DIGITS, Api, alert_body, subscriber_body

pytestmark = pytest.mark.both_backends

PROBLEM_KEYS = {"type", "title", "status", "detail", "errors"}


async def _post_raw(api: Api, path: str, data: bytes | str, content_type: str = "application/json") -> Any:
    return await api.client.post(path, data=data, headers={**api.auth(), "Content-Type": content_type})


async def _alerts_total(api: Api) -> int:
    total: int = (await (await api.client.get("/v1/alerts", headers=api.auth())).json())["total"]
    return total


async def test_malformed_json_is_400_problem(api: Api) -> None:
    """A body that is not JSON is a 400 problem+json with every RFC 9457 member."""
    response = await _post_raw(api, "/v1/alerts", b'{"topic": "env.heavy-pollution",')
    assert response.status == 400
    assert response.content_type == "application/problem+json"
    assert set(await response.json()) == PROBLEM_KEYS


async def test_empty_body_is_400(api: Api) -> None:
    """A POST with no body at all is a 400 problem."""
    response = await _post_raw(api, "/v1/alerts", b"")
    assert response.status == 400


async def test_nan_is_not_json(api: Api) -> None:
    """NaN, which Python's json would accept, is refused as not JSON."""
    response = await _post_raw(api, "/v1/alerts", b'{"topic": "env.heavy-pollution", "fallback_after": NaN}')
    assert response.status == 400


async def test_invalid_utf8_is_400(api: Api) -> None:
    """A body that is not valid UTF-8 is a 400 problem, not a crash."""
    response = await _post_raw(api, "/v1/alerts", b'{"headline": "\xff\xfe"}')
    assert response.status == 400


async def test_wrong_content_type_is_415(api: Api) -> None:
    """A form-encoded body is a 415 problem: the API speaks JSON."""
    response = await _post_raw(api, "/v1/alerts", "topic=env.heavy-pollution", "application/x-www-form-urlencoded")
    assert response.status == 415
    assert response.content_type == "application/problem+json"


async def test_wrong_types_are_422_with_field_errors(api: Api) -> None:
    """A number where a severity belongs and a string where seconds belong are each named."""
    response = await api.client.post("/v1/alerts", json=alert_body(severity=5, fallback_after="soon"),
                                     headers=api.auth())
    assert response.status == 422
    fields = {e["field"] for e in (await response.json())["errors"]}
    assert fields == {"severity", "fallback_after"}


async def test_unknown_fields_are_422_naming_them(api: Api) -> None:
    """A field the alert does not have is refused by name, and no alert is created."""
    response = await api.client.post("/v1/alerts", json=alert_body(colour="red"), headers=api.auth())
    assert response.status == 422
    assert [e["field"] for e in (await response.json())["errors"]] == ["colour"]
    assert await _alerts_total(api) == 0


async def test_nested_unknown_field_has_a_dotted_path(api: Api) -> None:
    """An unknown field inside contacts is named contacts.fax."""
    body = subscriber_body(contacts={"sms": MOBILE_DIGITS, "email": EMAIL, "fax": "0355-1234567"})
    response = await api.client.post("/v1/subscribers", json=body, headers=api.auth())
    assert response.status == 422
    assert [e["field"] for e in (await response.json())["errors"]] == ["contacts.fax"]


async def test_field_errors_inside_lists_carry_the_index(api: Api) -> None:
    """An unknown channel in the second subscription is named subscriptions.1.channels."""
    body = subscriber_body(subscriptions=[{"topic": "env.heavy-pollution", "channels": ["sms"]},
                                          {"topic": "env.air-forecast", "channels": ["pigeon"]}])
    response = await api.client.post("/v1/subscribers", json=body, headers=api.auth())
    assert [e["field"] for e in (await response.json())["errors"]] == ["subscriptions.1.channels"]


async def test_body_that_is_not_an_object_is_422(api: Api) -> None:
    """A JSON array where an alert object belongs is a 422 problem."""
    response = await api.client.post("/v1/alerts", json=[alert_body()], headers=api.auth())
    assert response.status == 422


async def test_messages_never_echo_the_rejected_value(api: Api) -> None:
    """A wrongly typed mobile number is refused without its value appearing in the answer."""
    body = subscriber_body(contacts={"sms": 13812345678})
    response = await api.client.post("/v1/subscribers", json=body, headers=api.auth())
    assert response.status == 422
    assert MOBILE_DIGITS not in await response.text()


async def test_oversized_body_is_413_problem(api: Api) -> None:
    """A body over the configured limit (1 MiB by default) is a 413 problem and creates nothing."""
    big = json.dumps(alert_body(body="x" * 1_100_000)).encode()
    response = await api.client.post("/v1/alerts", data=io.BytesIO(big),
                                     headers={**api.auth(), "Content-Type": "application/json"})
    assert response.status == 413
    assert response.content_type == "application/problem+json"
    assert await _alerts_total(api) == 0


async def test_unknown_query_parameter_is_422(api: Api) -> None:
    """A query parameter the listing does not know is refused by name."""
    response = await api.client.get("/v1/alerts?page=2", headers=api.auth())
    assert response.status == 422
    assert [e["field"] for e in (await response.json())["errors"]] == ["page"]


async def test_non_numeric_limit_is_422(api: Api) -> None:
    """limit=abc is a 422 problem naming limit."""
    response = await api.client.get("/v1/subscribers?limit=abc", headers=api.auth())
    assert response.status == 422
    assert [e["field"] for e in (await response.json())["errors"]] == ["limit"]


async def test_limit_over_the_maximum_is_422(api: Api) -> None:
    """limit=1001 is over the maximum page size: 422."""
    response = await api.client.get("/v1/alerts?limit=1001", headers=api.auth(Role.VIEWER))
    assert response.status == 422


async def test_forged_cursor_is_422(api: Api) -> None:
    """A cursor this API did not hand out is a 422 problem naming cursor."""
    response = await api.client.get("/v1/alerts?cursor=not-a-cursor", headers=api.auth())
    assert response.status == 422
    assert [e["field"] for e in (await response.json())["errors"]] == ["cursor"]


async def test_unknown_delivery_status_filter_is_422(api: Api) -> None:
    """status=lost is not a delivery status: 422 naming status."""
    _, accepted = await api.publish()
    response = await api.client.get(f"/v1/alerts/{accepted['id']}/deliveries?status=lost", headers=api.auth())
    assert [e["field"] for e in (await response.json())["errors"]] == ["status"]


async def test_expired_alert_is_422(api: Api) -> None:
    """An alert whose expires_at is already past is refused naming expires_at."""
    status, problem = await api.publish(expires_at="2000-01-01T00:00:00+08:00")
    assert status == 422
    assert [e["field"] for e in problem["errors"]] == ["expires_at"]


async def test_unknown_path_is_404_problem(api: Api) -> None:
    """A path the API does not have is a 404 problem+json."""
    response = await api.client.get("/v1/nothing-here", headers=api.auth())
    assert response.status == 404
    assert response.content_type == "application/problem+json"


async def test_wrong_method_is_405_problem_with_allow(api: Api) -> None:
    """PUT on the alert collection is a 405 problem that lists the allowed methods."""
    response = await api.client.put("/v1/alerts", json={}, headers=api.auth())
    assert response.status == 405
    assert response.content_type == "application/problem+json"
    assert "POST" in response.headers["Allow"]


async def test_unexpected_errors_are_500_problems_without_internals(api: Api) -> None:
    """A failure inside the service is a 500 problem that reveals nothing of the cause."""

    async def broken() -> list[dict[str, Any]]:
        raise RuntimeError("database password is hunter2")

    api.service.store.list_topics = broken  # type: ignore[method-assign]
    response = await api.client.get("/v1/topics", headers=api.auth())
    assert response.status == 500
    assert response.content_type == "application/problem+json"
    assert "hunter2" not in await response.text()
