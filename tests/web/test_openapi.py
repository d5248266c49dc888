"""The API describes itself: /openapi.json covers every route, generated from the models; /docs renders it
without the internet."""

from __future__ import annotations

import re
from typing import Any

import pytest

from tests.web.conftest import Api

pytestmark = pytest.mark.both_backends

SPEC_PATHS = {
    "/v1/topics": {"get", "post"}, "/v1/topics/{key}": {"get"},
    "/v1/subscribers": {"get", "post"}, "/v1/subscribers/{id}": {"get", "patch", "delete"},
    "/v1/subscribers/{id}/subscriptions": {"post"},
    "/v1/alerts": {"get", "post"}, "/v1/alerts/{id}": {"get"}, "/v1/alerts/{id}/cancel": {"post"},
    "/v1/alerts/{id}/coverage": {"get"}, "/v1/alerts/{id}/deliveries": {"get"},
    "/v1/regions": {"get"}, "/v1/groups": {"get"},
    "/healthz": {"get"}, "/metrics": {"get"}, "/openapi.json": {"get"},
}


async def _document(api: Api) -> dict[str, Any]:
    response = await api.client.get("/openapi.json")
    assert response.status == 200
    doc: dict[str, Any] = await response.json()
    return doc


def _refs(node: Any) -> list[str]:
    if isinstance(node, dict):
        return [v for k, v in node.items() if k == "$ref"] + [r for v in node.values() for r in _refs(v)]
    if isinstance(node, list):
        return [r for v in node for r in _refs(v)]
    return []


async def test_document_is_openapi_3_1(api: Api) -> None:
    """/openapi.json needs no key and declares OpenAPI 3.1."""
    doc = await _document(api)
    assert doc["openapi"].startswith("3.1")


async def test_every_spec_path_and_method_is_listed(api: Api) -> None:
    """Every path and method of the SPEC's interface appears in the document."""
    paths = (await _document(api))["paths"]
    for path, methods in SPEC_PATHS.items():
        assert methods <= set(paths.get(path, {})), path


async def test_every_served_route_is_documented(api: Api) -> None:
    """No route the app serves is missing from the document, and none is left undocumented."""
    paths = (await _document(api))["paths"]
    served = {(r.resource.canonical, r.method.lower()) for r in api.app.router.routes()
              if r.resource is not None and r.method not in ("HEAD", "*")}
    listed = {(path, method) for path, ops in paths.items() for method in ops}
    assert served == listed
    assert all(op["summary"] != "(undocumented)" for ops in paths.values() for op in ops.values())


async def test_publish_body_is_the_alert_in_schema(api: Api) -> None:
    """POST /v1/alerts takes the AlertIn schema, whose properties include topic, headline and severity."""
    doc = await _document(api)
    body = doc["paths"]["/v1/alerts"]["post"]["requestBody"]["content"]["application/json"]["schema"]
    assert body == {"$ref": "#/components/schemas/AlertIn"}
    alert_in = doc["components"]["schemas"]["AlertIn"]
    assert {"topic", "headline", "severity", "regions", "groups"} <= set(alert_in["properties"])
    assert alert_in["additionalProperties"] is False


async def test_every_reference_resolves(api: Api) -> None:
    """Every $ref in the document points to a component that exists."""
    doc = await _document(api)
    for ref in _refs(doc):
        kind, name = re.fullmatch(r"#/components/(\w+)/(.+)", ref).groups()  # type: ignore[union-attr]
        assert name in doc["components"][kind], ref


async def test_errors_are_described_as_problems(api: Api) -> None:
    """Error answers are documented as application/problem+json with the Problem schema."""
    doc = await _document(api)
    problem = doc["components"]["schemas"]["Problem"]
    assert {"type", "title", "status", "detail", "errors"} <= set(problem["properties"])
    answer = doc["paths"]["/v1/alerts"]["post"]["responses"]["422"]["content"]["application/problem+json"]
    assert answer["schema"] == {"$ref": "#/components/schemas/Problem"}


async def test_bearer_security_applies_to_v1_only(api: Api) -> None:
    """A bearer scheme is declared; /v1 operations require it and /healthz does not."""
    doc = await _document(api)
    assert doc["components"]["securitySchemes"]["bearer"] == {
        "type": "http", "scheme": "bearer", "description": "an API key: `Authorization: Bearer ntf_…`"}
    assert doc["paths"]["/v1/alerts"]["post"]["security"] == [{"bearer": []}]
    assert doc["paths"]["/healthz"]["get"]["security"] == []


async def test_query_and_path_parameters_are_listed(api: Api) -> None:
    """The delivery listing documents id (path) and limit, cursor, status, channel, format (query)."""
    doc = await _document(api)
    params = doc["paths"]["/v1/alerts/{id}/deliveries"]["get"]["parameters"]
    assert {(p["name"], p["in"]) for p in params} == {
        ("id", "path"), ("limit", "query"), ("cursor", "query"), ("status", "query"), ("channel", "query"),
        ("format", "query")}


async def test_docs_page_is_self_contained_and_bilingual(api: Api) -> None:
    """/docs is an HTML page titled in Chinese first, English second, that loads nothing from elsewhere."""
    response = await api.client.get("/docs")
    assert response.status == 200 and response.content_type == "text/html"
    html = await response.text()
    title = re.search(r"<title>(.*)</title>", html).group(1)  # type: ignore[union-attr]
    assert re.match(r"[\u4e00-\u9fff]", title) and "API" in title
    assert "/openapi.json" in html
    assert not re.search(r"""(src|href)=["']?(https?:)?//""", html)
