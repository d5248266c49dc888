"""The dashboard's list of alerts waiting for approval, with approve and reject forms (SPEC "Departments and
approval"): what waits is shown with what an approver needs, admins decide with the session's CSRF token,
viewers only look, in zh-CN and in English."""

from __future__ import annotations

import re
from typing import Any

import pytest

from notifier.models import Role
from tests.web.conftest import CSRF_FIELD, Api, ApiFactory, admin_page

pytestmark = pytest.mark.both_backends

RED = {"severity": "extreme", "level": "red", "headline": "重污染天气红色预警", "instruction": "停止户外活动"}


@pytest.fixture
async def held(make_api: ApiFactory) -> Api:
    api = await make_api(approval={"severities": ["extreme"], "timeout": 3600})
    await api.subscriber()
    return api


async def _pending(api: Api) -> str:
    status, accepted = await api.publish(Role.PUBLISHER, **RED)
    assert accepted["status"] == "pending_approval", (status, accepted)
    alert_id: str = accepted["id"]
    return alert_id


async def _post(api: Api, path: str, page: str, **form: str) -> tuple[int, str]:
    token = CSRF_FIELD.search(page)
    assert token is not None
    response = await api.client.post(path, data={"csrf": token.group(1), **form}, allow_redirects=False)
    return response.status, await response.text()


async def _status(api: Api, alert_id: str) -> dict[str, Any]:
    data: dict[str, Any] = await (await api.client.get(f"/v1/alerts/{alert_id}", headers=api.auth())).json()
    return data


def _waiting(page: str) -> str:
    match = re.search(r'<section id="waiting".*?</section>', page, re.S)
    assert match is not None, "no section of alerts waiting for approval"
    return match.group(0)


async def test_the_list_shows_what_waits_with_what_to_decide_on(held: Api) -> None:
    """The waiting alert's headline, instruction, districts, would-reach figure and both forms, in Chinese."""
    alert_id = await _pending(held)
    section = _waiting(await admin_page(held, "/admin"))
    assert "待审批" in section and "重污染天气红色预警" in section and "停止户外活动" in section
    assert 'data-figure="would-reach">1<' in section and "全市" in section
    assert f'action="/admin/alerts/{alert_id}/approve"' in section
    assert f'action="/admin/alerts/{alert_id}/reject"' in section and "驳回理由" in section


async def test_the_list_speaks_english_with_lang_en(held: Api) -> None:
    """With ?lang=en the section's words are English."""
    await _pending(held)
    section = _waiting(await admin_page(held, "/admin?lang=en"))
    assert "Waiting for approval" in section and "Approve and send" in section and "Reason for rejecting" in section


async def test_nothing_waiting_shows_no_section(held: Api) -> None:
    """Without an alert waiting, the list has no approval section."""
    assert 'id="waiting"' not in await admin_page(held, "/admin")


async def test_an_admin_approves_from_the_dashboard(held: Api) -> None:
    """The approve form releases the alert (303 back to the list): active, its deliveries queued."""
    alert_id = await _pending(held)
    page = await admin_page(held, "/admin")
    status, _ = await _post(held, f"/admin/alerts/{alert_id}/approve", page)
    assert status == 303
    alert = await _status(held, alert_id)
    assert (alert["status"], alert["targeted"]) == ("active", 1)
    assert 'id="waiting"' not in await admin_page(held, "/admin")


async def test_an_admin_rejects_from_the_dashboard_with_a_reason(held: Api) -> None:
    """The reject form ends the alert with the typed reason; an empty reason is refused (422) and it waits."""
    alert_id = await _pending(held)
    page = await admin_page(held, "/admin")
    empty, _ = await _post(held, f"/admin/alerts/{alert_id}/reject", page, reason="  ")
    assert empty == 422 and (await _status(held, alert_id))["status"] == "pending_approval"
    status, _ = await _post(held, f"/admin/alerts/{alert_id}/reject", page, reason="监测数据未复核")
    assert status == 303
    alert = await _status(held, alert_id)
    assert (alert["status"], alert["decision_reason"]) == ("rejected", "监测数据未复核")


async def test_a_form_without_the_sessions_token_decides_nothing(held: Api) -> None:
    """A POST with another token (a forged cross-site form) is 403 and the alert still waits."""
    alert_id = await _pending(held)
    await admin_page(held, "/admin")
    response = await held.client.post(f"/admin/alerts/{alert_id}/approve", data={"csrf": "forged"},
                                      allow_redirects=False)
    assert response.status == 403
    assert (await _status(held, alert_id))["status"] == "pending_approval"


async def test_a_viewer_sees_what_waits_but_cannot_decide(held: Api) -> None:
    """A viewer's list shows the waiting alert without forms; posting the form anyway is 403."""
    alert_id = await _pending(held)
    page = await admin_page(held, "/admin", Role.VIEWER)
    section = _waiting(page)
    assert "重污染天气红色预警" in section and "/approve" not in section
    status, _ = await _post(held, f"/admin/alerts/{alert_id}/approve", page)
    assert status == 403
    assert (await _status(held, alert_id))["status"] == "pending_approval"


async def test_an_alert_decided_already_is_409(held: Api) -> None:
    """Approving from a stale page after it was rejected through the API says it is decided (409)."""
    alert_id = await _pending(held)
    page = await admin_page(held, "/admin")
    await held.client.post(f"/v1/alerts/{alert_id}/reject", json={"reason": "否"}, headers=held.auth())
    status, text = await _post(held, f"/admin/alerts/{alert_id}/approve", page)
    assert status == 409 and "已处理" in text
