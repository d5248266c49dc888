"""The dashboard's deadlines page: each department's scheduled disclosures of a month, in its language."""

from __future__ import annotations

import re
from datetime import datetime

import pytest

from notifier.localtime import LOCAL_TZ
from notifier.models import Role
from tests.web.conftest import Api, admin_page
from tests.web.public_support import backdated

pytestmark = pytest.mark.both_backends


async def ranking_topics(api: Api) -> None:
    """Two monthly topics of two departments from October 2026: one published late, one never."""
    for key, domain, department in (("env.ranking-test", "environment", "市环保局"),
                                    ("health.report-test", "health", "市卫计委")):
        response = await api.client.post("/v1/topics", headers=api.auth(), json={
            "key": key, "name": f"月报{key[:3]}", "name_en": f"Monthly report {key[:3]}",
            "domain": domain, "department": department,
            "channels": ["sms"], "schedule": {"every": "month", "by_day": 10, "since": "2026-10"}})
        assert response.status == 201, await response.text()
    await backdated(api, datetime(2026, 10, 15, 9, 0, tzinfo=LOCAL_TZ), topic="env.ranking-test")


def row_status(page: str, topic: str) -> str:
    found = re.search(rf'<tr data-topic="{re.escape(topic)}" data-period="2026-10">.*?data-status="(\w+)">([^<]+)<',
                      page, re.S)
    assert found is not None, topic
    return f"{found.group(1)} {found.group(2)}"


async def test_the_page_shows_each_departments_deadlines(api: Api) -> None:
    """October: 市卫计委's report overdue (listed first), 市环保局's published late, in Chinese terms."""
    await ranking_topics(api)
    page = await admin_page(api, "/admin/compliance?period=2026-10", Role.VIEWER)
    assert row_status(page, "health.report-test") == "overdue 逾期未公开"
    assert row_status(page, "env.ranking-test") == "late 逾期公开"
    assert page.index("市卫计委") < page.index("市环保局")
    assert "1项逾期" in page


async def test_the_page_speaks_english(api: Api) -> None:
    """?lang=en: English topic names and terms."""
    await ranking_topics(api)
    page = await admin_page(api, "/admin/compliance?period=2026-10&lang=en")
    assert row_status(page, "env.ranking-test") == "late published late"
    assert "Monthly report env" in page and "Disclosure deadlines" in page


async def test_a_month_that_is_not_one_is_said_on_the_page(api: Api) -> None:
    """?period=2026-13 answers 422 with the reason on the page."""
    await admin_page(api, "/admin")
    response = await api.client.get("/admin/compliance?period=2026-13")
    assert response.status == 422
    assert "YYYY-MM" in await response.text()


async def test_the_page_needs_a_session(api: Api) -> None:
    """Without signing in, the page sends the reader to the sign-in form."""
    response = await api.client.get("/admin/compliance", allow_redirects=False)
    assert response.status == 303 and response.headers["Location"].startswith("/admin/login")
