"""Catalogue deadlines over the API: a topic's schedule as data (create, read, change) and
GET /v1/catalogue/compliance for a month."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import pytest

from notifier.localtime import LOCAL_TZ
from notifier.models import Role
from tests.web.conftest import Api
from tests.web.public_support import backdated

pytestmark = pytest.mark.both_backends

MONTHLY = {"every": "month", "by_day": 20, "since": "2026-10"}


def topic_body(**changes: Any) -> dict[str, Any]:
    return {"key": "env.ranking-test", "name": "空气质量排名", "domain": "environment", "department": "市环保局",
            "channels": ["sms"], "schedule": MONTHLY, **changes}


async def call(api: Api, method: str, path: str, role: Role = Role.ADMIN, **kwargs: Any) -> tuple[int, Any]:
    response = await api.client.request(method, path, headers=api.auth(role), **kwargs)
    return response.status, await response.json()


async def test_a_topic_takes_its_schedule_as_data(api: Api) -> None:
    """POST /v1/topics with a schedule object: the topic shows the object and when it was set."""
    status, topic = await call(api, "POST", "/v1/topics", json=topic_body())
    assert status == 201, topic
    assert topic["schedule"] == {"every": "month", "by_day": 20, "by_weekday": None, "by_time": None,
                                 "since": "2026-10"}
    assert topic["schedule_set_at"] is not None
    status, again = await call(api, "GET", "/v1/topics/env.ranking-test")
    assert (status, again) == (200, topic)


async def test_the_seed_deadlines_are_data_and_event_driven_ones_text(api: Api) -> None:
    """The monthly ranking's schedule reads as its object; the pollution warning's stays its words."""
    _, ranking = await call(api, "GET", "/v1/topics/env.monthly-ranking")
    assert (ranking["schedule"]["every"], ranking["schedule"]["by_day"]) == ("month", 20)
    _, warning = await call(api, "GET", "/v1/topics/env.heavy-pollution")
    assert warning["schedule"] == "预警发布、调整、解除时立即推送"


async def test_a_malformed_schedule_is_refused_on_its_field(api: Api) -> None:
    """A weekly schedule given a day of the month: 422 naming `schedule`, nothing created."""
    status, problem = await call(api, "POST", "/v1/topics", json=topic_body(schedule={"every": "week", "by_day": 3}))
    assert status == 422
    assert [e["field"] for e in problem["errors"]] == ["schedule"]
    assert "by_day does not apply" in problem["errors"][0]["message"]
    status, _ = await call(api, "GET", "/v1/topics/env.ranking-test")
    assert status == 404


async def test_changing_a_schedule_sets_it_anew(api: Api) -> None:
    """PATCH with another schedule moves schedule_set_at; the same schedule again leaves it; null removes it."""
    _, created = await call(api, "POST", "/v1/topics", json=topic_body(schedule={"every": "month"}))
    status, same = await call(api, "PATCH", "/v1/topics/env.ranking-test", json={"schedule": {"every": "month"}})
    assert (status, same["schedule_set_at"]) == (200, created["schedule_set_at"])
    _, weekly = await call(api, "PATCH", "/v1/topics/env.ranking-test",
                           json={"schedule": {"every": "week", "by_weekday": 5}, "name": "每周排名"})
    assert (weekly["schedule"]["every"], weekly["name"]) == ("week", "每周排名")
    assert weekly["schedule_set_at"] > created["schedule_set_at"]
    _, removed = await call(api, "PATCH", "/v1/topics/env.ranking-test", json={"schedule": None})
    assert removed["schedule"] is None


async def test_a_topic_change_needs_an_admin_and_a_topic(api: Api) -> None:
    """A viewer may not change a topic (403); an unknown topic is 404; a required field cannot be removed (422)."""
    assert (await call(api, "PATCH", "/v1/topics/env.heavy-pollution", Role.VIEWER, json={"name": "x"}))[0] == 403
    assert (await call(api, "PATCH", "/v1/topics/env.no-such", json={"name": "x"}))[0] == 404
    status, problem = await call(api, "PATCH", "/v1/topics/env.heavy-pollution", json={"name": None})
    assert status == 422 and [e["field"] for e in problem["errors"]] == ["name"]


async def test_compliance_lists_each_owed_period_with_its_status(api: Api) -> None:
    """October published late, November on time: the month's rows say so to a viewer."""
    await call(api, "POST", "/v1/topics", json=topic_body())
    await backdated(api, datetime(2026, 10, 25, 9, 0, tzinfo=LOCAL_TZ), topic="env.ranking-test")
    await backdated(api, datetime(2026, 11, 3, 9, 0, tzinfo=LOCAL_TZ), topic="env.ranking-test")
    rows = {}
    for month in ("2026-10", "2026-11"):
        status, listed = await call(api, "GET", f"/v1/catalogue/compliance?period={month}", Role.VIEWER)
        assert status == 200 and listed["period"] == month
        rows.update({r["period"]: r for r in listed["items"] if r["topic"] == "env.ranking-test"})
    assert rows["2026-10"] == {"topic": "env.ranking-test", "department": "市环保局", "period": "2026-10",
                               "due_at": "2026-10-20T23:59:59+08:00", "published_at": "2026-10-25T09:00:00+08:00",
                               "status": "late"}
    assert (rows["2026-11"]["status"], rows["2026-11"]["published_at"]) == ("on_time", "2026-11-03T09:00:00+08:00")


async def test_compliance_refuses_a_period_that_is_not_a_month(api: Api) -> None:
    """?period=2026-13: 422 on period; no key: 401."""
    status, problem = await call(api, "GET", "/v1/catalogue/compliance?period=2026-13")
    assert status == 422 and [e["field"] for e in problem["errors"]] == ["period"]
    assert (await api.client.get("/v1/catalogue/compliance")).status == 401
