"""The catalogue over the HTTP API: topics (read by any role, created by admins), regions and groups."""

from __future__ import annotations

import pytest

from notifier.models import Role
from tests.web.conftest import Api

pytestmark = pytest.mark.both_backends


async def test_any_role_lists_topics(api: Api) -> None:
    """A publisher can read the topic catalogue, which holds the seed's topics."""
    response = await api.client.get("/v1/topics", headers=api.auth(Role.PUBLISHER))
    keys = [t["key"] for t in (await response.json())["items"]]
    assert "env.heavy-pollution" in keys


async def test_any_role_reads_one_topic(api: Api) -> None:
    """A viewer can read one topic with its department."""
    response = await api.client.get("/v1/topics/env.heavy-pollution", headers=api.auth(Role.VIEWER))
    assert response.status == 200
    assert (await response.json())["domain"] == "environment"


async def test_unknown_topic_is_404(api: Api) -> None:
    """Reading a topic that does not exist is a 404 problem."""
    response = await api.client.get("/v1/topics/env.none", headers=api.auth())
    assert response.status == 404


async def test_admin_creates_a_topic(api: Api) -> None:
    """An admin creates a topic and gets 201 with it."""
    body = {"key": "transit.night-bus", "name": "夜班公交", "domain": "transit", "department": "市交通局",
            "channels": ["wechat", "sms"]}
    response = await api.client.post("/v1/topics", json=body, headers=api.auth())
    assert response.status == 201
    assert (await response.json())["key"] == "transit.night-bus"


async def test_duplicate_topic_is_409(api: Api) -> None:
    """Creating a topic whose key exists is a 409 problem."""
    body = {"key": "env.heavy-pollution", "name": "重污染天气预警", "domain": "environment", "department": "市环保局"}
    response = await api.client.post("/v1/topics", json=body, headers=api.auth())
    assert response.status == 409


async def test_topic_with_unknown_domain_is_422(api: Api) -> None:
    """A topic in a domain the catalogue does not have is refused naming domain."""
    body = {"key": "space.launch", "name": "发射", "domain": "space", "department": "市航天局"}
    response = await api.client.post("/v1/topics", json=body, headers=api.auth())
    assert response.status == 422
    assert [e["field"] for e in (await response.json())["errors"]] == ["domain"]


async def test_publisher_cannot_create_topics(api: Api) -> None:
    """Creating topics is for admins: a publisher gets 403."""
    body = {"key": "env.noise", "name": "噪声", "domain": "environment", "department": "市环保局"}
    response = await api.client.post("/v1/topics", json=body, headers=api.auth(Role.PUBLISHER))
    assert response.status == 403


async def test_any_role_lists_regions(api: Api) -> None:
    """The region listing holds the 13 counties and districts of the default catalogue."""
    response = await api.client.get("/v1/regions", headers=api.auth(Role.VIEWER))
    regions = (await response.json())["items"]
    assert len(regions) == 13 and {"code": "140402", "name": "城区"}.items() <= regions[0].items()


async def test_any_role_lists_groups(api: Api) -> None:
    """The group listing holds the seed's population groups."""
    response = await api.client.get("/v1/groups", headers=api.auth(Role.PUBLISHER))
    assert "elderly" in [g["code"] for g in (await response.json())["items"]]
