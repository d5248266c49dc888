"""Input built to break the reader — forms without a boundary, JSON nested a thousand deep, webhook hosts that do
not resolve — gets a clear 4xx and changes nothing, never a 500."""

from __future__ import annotations

import json
from typing import Any

import pytest

from tests.web.conftest import Api, ApiFactory, alert_body, subscriber_body

# The HTML form routes the issue found answering 500 (schemathesis), and a stand-in token for those that take one.
FORM_ROUTES = ("/subscribe", "/subscribe/verify", "/subscribe/resend", "/subscribe/confirm/{token}", "/admin/login")
NO_BOUNDARY = {"Content-Type": "multipart/form-data"}


def _post_paths(api: Api) -> list[str]:
    """Every POST route of the running app, placeholders filled with a token-shaped value."""
    paths = set()
    for resource in api.app.router.resources():
        if any(route.method == "POST" for route in resource):
            info = resource.get_info()
            paths.add(info.get("path") or info.get("formatter", ""))
    return sorted(p for p in paths if p)


def _filled(path: str) -> str:
    return path.replace("{token}", "AAAA.BBBB").replace("{id}", "00000000000000000000000000000000").replace(
        "{provider}", "aliyun").replace("{key}", "env.heavy-pollution")


async def test_named_form_routes_answer_400_to_multipart_without_boundary(api: Api) -> None:
    """Sign-up, code, resend, email confirmation and dashboard sign-in answer a boundary-less multipart with 400."""
    for path in FORM_ROUTES:
        response = await api.client.post(_filled(path), data=b"csrf=x&key=y", headers=NO_BOUNDARY)
        assert response.status == 400, path
        assert response.content_type == "application/problem+json", path


async def test_broken_multipart_framing_is_400(api: Api) -> None:
    """A multipart body whose framing is broken (a boundary that never closes a header block) is a 400."""
    response = await api.client.post("/subscribe", data=b"--x\r\ngarbage",
                                     headers={"Content-Type": "multipart/form-data; boundary=x"})
    assert response.status == 400


async def test_unknown_form_charset_is_400(api: Api) -> None:
    """A urlencoded form in a charset nobody knows is a 400, not a LookupError."""
    response = await api.client.post("/admin/login", data=b"key=x",
                                      headers={"Content-Type": "application/x-www-form-urlencoded; charset=nope"})
    assert response.status == 400


async def test_no_post_route_answers_500_to_a_boundary_less_multipart(api: Api) -> None:
    """Every POST route the app has — forms, API, callbacks — answers a boundary-less multipart below 500."""
    paths = _post_paths(api)
    assert len(paths) > 20  # the router was read: sign-up, dashboard, API, callbacks
    for path in paths:
        response = await api.client.post(_filled(path), data=b"a=b", headers={**NO_BOUNDARY, **api.auth()})
        assert response.status < 500, (path, response.status)


@pytest.mark.parametrize("path", ["/v1/alerts", "/v1/subscribers"])
async def test_thousand_deep_json_is_a_400_problem(api: Api, path: str) -> None:
    """A body of arrays nested 1,000 deep is refused as a 400 problem naming the nesting, and nothing is made."""
    response = await api.client.post(path, data="[" * 1000 + "]" * 1000,
                                     headers={**api.auth(), "Content-Type": "application/json"})
    assert response.status == 400
    assert response.content_type == "application/problem+json"
    assert "nest" in (await response.json())["detail"]
    listed = await api.client.get(path, headers=api.auth())
    assert (await listed.json())["total"] == 0


async def test_deep_json_inside_a_known_field_is_refused_too(api: Api) -> None:
    """Nesting hidden in an alert's free-form `data` (200 deep) is a 400, and no alert is created."""
    nested: Any = "x"
    for _ in range(200):
        nested = {"a": nested}
    response = await api.client.post("/v1/alerts", data=json.dumps(alert_body(data={"n": nested})),
                                     headers={**api.auth(), "Content-Type": "application/json"})
    assert response.status == 400


async def test_brackets_inside_strings_are_not_nesting(api: Api) -> None:
    """Text full of brackets and escaped quotes is text: an alert whose data holds 3,000 of them is accepted."""
    body = alert_body(data={"note": '[{"\\"' * 600, "list": [[["three deep"]]]})
    response = await api.client.post("/v1/alerts", json=body, headers=api.auth())
    assert response.status == 202, await response.text()


async def test_utf16_json_is_still_read(api: Api) -> None:
    """A body in UTF-16 (which JSON allows a reader to detect) is read as before."""
    response = await api.client.post("/v1/alerts", data=json.dumps(alert_body()).encode("utf-16"),
                                     headers={**api.auth(), "Content-Type": "application/json"})
    assert response.status == 202, await response.text()


@pytest.mark.parametrize(("host", "allow_private"), [
    ("nonexistent-host.invalid", True), ("localhost%00.example.org", True),
    # Resolves nowhere on a host without an ip6-localhost line, and to ::1 (loopback) where there is one.
    ("ip6-localhost", False),
])
async def test_webhook_host_that_does_not_resolve_is_refused_at_creation(make_api: ApiFactory, host: str,
                                                                         allow_private: bool) -> None:
    """A webhook whose host does not resolve here (`.invalid` never does) is a 422 on contacts.webhook, and no
    subscriber is created, even where private networks are allowed."""
    api = await make_api(allow_private=allow_private)
    body = subscriber_body(contacts={"webhook": f"https://{host}/hook"},
                           subscriptions=[{"topic": "env.heavy-pollution", "channels": ["webhook"]}])
    response = await api.client.post("/v1/subscribers", json=body, headers=api.auth())
    assert response.status == 422, await response.text()
    errors = (await response.json())["errors"]
    assert [e["field"] for e in errors] == ["contacts.webhook"]
    assert (await (await api.client.get("/v1/subscribers", headers=api.auth())).json())["total"] == 0


async def test_webhook_host_that_resolves_is_still_accepted(api: Api) -> None:
    """A name that does resolve (localhost, with private networks allowed) is accepted: the rule refuses names that
    do not resolve, not names."""
    body = subscriber_body(contacts={"webhook": "http://localhost:9/hook"},
                           subscriptions=[{"topic": "env.heavy-pollution", "channels": ["webhook"]}])
    response = await api.client.post("/v1/subscribers", json=body, headers=api.auth())
    assert response.status == 201, await response.text()
