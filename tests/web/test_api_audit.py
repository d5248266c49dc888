"""The audit log over HTTP (SPEC "Audit"): `GET /v1/audit` for admins, filtered and paged, each entry exactly as
hashed; `GET /audit/head` for anyone, without a key."""

from __future__ import annotations

from typing import Any

import pytest

from notifier.audit import ChainOK, verify_chain
from notifier.models import Role
from notifier.web.paging import encode_cursor
from tests.web.conftest import Api

pytestmark = pytest.mark.both_backends


async def _audit(api: Api, query: str = "", role: Role = Role.ADMIN) -> dict[str, Any]:
    response = await api.client.get(f"/v1/audit{query}", headers=api.auth(role))
    assert response.status == 200, await response.text()
    data: dict[str, Any] = await response.json()
    return data


async def test_the_log_shows_entries_that_verify_as_shown(api: Api) -> None:
    """Every entry as GET /v1/audit shows it hashes to its `hash` and links to the one before."""
    await api.publish(Role.PUBLISHER)
    page = await _audit(api, "?limit=1000")
    assert page["total"] == len(page["items"]) and page["next_cursor"] is None
    assert isinstance(verify_chain(page["items"]), ChainOK)
    publish = [e for e in page["items"] if e["action"] == "alert.publish"]
    assert len(publish) == 1 and publish[0]["role"] == "publisher" and publish[0]["department"] == "市环保局"


async def test_filters_by_action_and_department(api: Api) -> None:
    """`?action=` and `?department=` keep only the matching entries, and `total` counts only those."""
    await api.publish(Role.PUBLISHER)
    await api.publish()
    by_action = await _audit(api, "?action=alert.publish")
    assert by_action["total"] == 2 and {e["action"] for e in by_action["items"]} == {"alert.publish"}
    by_department = await _audit(api, "?department=市环保局")
    assert [(e["action"], e["role"]) for e in by_department["items"]] == [("alert.publish", "publisher")]


async def test_filters_by_time(api: Api) -> None:
    """`?since=` in the future shows nothing; `?until=` a date long past shows nothing; both with an offset."""
    assert (await _audit(api, "?since=2999-01-01T00:00:00%2B08:00"))["total"] == 0
    assert (await _audit(api, "?until=2000-01-01"))["total"] == 0
    assert (await _audit(api, "?since=2000-01-01T00:00:00Z"))["total"] > 0


async def test_bad_filters_are_422_naming_the_field(api: Api) -> None:
    """A time without an offset and an unknown action are refused, each on its field."""
    response = await api.client.get("/v1/audit?since=2026-05-20T08:00:00&action=alert.delete", headers=api.auth())
    assert response.status == 422
    assert sorted(e["field"] for e in (await response.json())["errors"]) == ["action", "since"]


async def test_pages_follow_in_seq_order(api: Api) -> None:
    """Two-entry pages with next_cursor walk the whole log in seq order."""
    seqs: list[int] = []
    query = "?limit=2"
    while True:
        page = await _audit(api, query)
        seqs += [e["seq"] for e in page["items"]]
        if page["next_cursor"] is None:
            break
        query = f"?limit=2&cursor={page['next_cursor']}"
    assert seqs == list(range(1, page["total"] + 1))


@pytest.mark.parametrize("role", [Role.PUBLISHER, Role.VIEWER])
async def test_only_admins_read_the_log(api: Api, role: Role) -> None:
    """Publishers and viewers get 403."""
    assert (await api.client.get("/v1/audit", headers=api.auth(role))).status == 403


async def test_the_head_is_public_and_moves_with_each_act(api: Api) -> None:
    """GET /audit/head needs no key and shows {seq, hash, at} of the last entry; an act moves it by one."""
    before = await (await api.client.get("/audit/head")).json()
    await api.publish()
    after = await (await api.client.get("/audit/head")).json()
    assert set(after) == {"seq", "hash", "at"}
    assert after["seq"] == before["seq"] + 1 and after["hash"] != before["hash"]
    last = (await _audit(api, f"?limit=1&cursor={encode_cursor(before['seq'])}"))["items"][0]
    assert (last["seq"], last["hash"], last["at"]) == (after["seq"], after["hash"], after["at"])
