"""Schemathesis over `/openapi.json`: every operation the API documents — the JSON API, the provider callbacks and
the HTML pages and forms — fed generated input (valid and not) by an admin, and not one answer is a 5xx."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import not_a_server_error
from schemathesis.core.failures import Failure, FailureGroup
from schemathesis.schemas import APIOperation, BaseSchema

from tests.served import serve

pytestmark = pytest.mark.slow

EXAMPLES = 50  # generated requests per operation (about 75 operations; the module runs in about half a minute)
FORM_ROUTES = {"/subscribe", "/subscribe/verify", "/subscribe/resend", "/subscribe/confirm/{token}", "/admin/login"}


@pytest.fixture(scope="module")
def served_api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, str]]:
    """One `notifier serve` (worker off) for the whole module, and an admin key."""
    with serve(tmp_path_factory.mktemp("fuzz"), "[worker]\nenabled = false\n") as running:
        yield running


@pytest.fixture(scope="module")
def web_schema(served_api: tuple[str, str]) -> BaseSchema:
    """The served app's own OpenAPI document, as schemathesis reads it."""
    base, _ = served_api
    return schemathesis.openapi.from_url(f"{base}/openapi.json")


def _server_error(operation: APIOperation, key: str) -> str | None:
    """The shrunk failing request when some generated request to `operation` is answered with a 5xx, else None.
    (Schemathesis' own pytest plugin is driven by hand: its lazy fixture loader does not run on pytest 9.)"""

    @given(case=operation.as_strategy())
    @settings(max_examples=EXAMPLES, deadline=None, derandomize=True, database=None,
              suppress_health_check=list(HealthCheck))
    def fuzz(case: schemathesis.Case) -> None:
        case.call_and_validate(headers={"Authorization": f"Bearer {key}"}, checks=[not_a_server_error])

    try:
        fuzz()
    except (Failure, FailureGroup) as exc:  # each names the shrunk request (as curl) and the answer
        return f"{operation.label}: {exc}"
    return None


def test_no_operation_answers_5xx(web_schema: BaseSchema, served_api: tuple[str, str]) -> None:
    """Generated requests to every documented operation, with an admin key: none is answered with a 5xx."""
    _, key = served_api
    operations = [result.ok() for result in web_schema.get_all_operations()]
    assert len(operations) > 60
    failures = [found for operation in operations if (found := _server_error(operation, key))]
    assert failures == []


def test_the_schema_names_the_form_routes(web_schema: BaseSchema) -> None:
    """The fuzzed document holds the HTML form routes too (sign-up, code, resend, confirm, dashboard sign-in)."""
    assert set(web_schema.raw_schema["paths"]) >= FORM_ROUTES
