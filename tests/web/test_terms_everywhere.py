"""One word for one thing: a severity, a warning level, an urgency, a status or a channel reads the same on the
admin dashboard, the public column, the citizen's own pages and in the messages, in Chinese and in English."""

from __future__ import annotations

from pathlib import Path

import pytest

from notifier.fakes.smtp import RunningSmtp
from notifier.links import manage_url
from notifier.publish import alert_view
from notifier.rendering import Renderer
from notifier.terms import Terms
from tests.web.conftest import Api, ApiFactory, admin_page

pytestmark = pytest.mark.both_backends

ALERT = {"topic": "env.heavy-pollution", "headline": "重污染天气橙色预警", "body": "明日起启动橙色预警。",
         "severity": "extreme", "urgency": "expected", "level": "orange", "public": True}
# The words each page used to have of its own, and the literal translation citizens did not understand.
RETIRED = ("极端", "轻微", "中等", "已撤回", "预计")


@pytest.fixture
async def served(make_api: ApiFactory, smtp: RunningSmtp) -> tuple[Api, str, str]:
    """The app with email, one subscriber by email, and an extreme, orange, expected warning sent to them."""
    api = await make_api(channels={"email": {"host": smtp.host, "port": smtp.port, "tls": "none",
                                             "sender": "notify@changzhi.gov.cn"}})
    created = await api.subscriber(contacts={"email": "wang.fang@example.org"},
                                   subscriptions=[{"topic": "env.heavy-pollution", "channels": ["email"]}])
    status, accepted = await api.publish(**ALERT)
    assert status == 202, accepted
    await api.service.dispatcher.drain(timeout=10)
    return api, str(accepted["id"]), str(created["id"])


async def _text(api: Api, path: str) -> str:
    response = await api.client.get(path)
    assert response.status == 200, await response.text()
    return await response.text()


def _message(api: Api, alert_row: object, tmp_path: Path, lang: str) -> str:
    """A message rendered with the real variables: the words a template lends from the shared terms."""
    root = tmp_path / "templates" / "_default"
    root.mkdir(parents=True, exist_ok=True)
    (root / f"sms.{lang}.j2").write_text(
        "{% block text %}{{ severity_name }}|{{ level_name }}|{{ urgency_name }}{% endblock %}", encoding="utf-8")
    renderer = Renderer(root.parent, public_url="https://notify.example.gov.cn", catalogue=api.service.catalogue)
    topic = api.service.catalogue.topic("env.heavy-pollution")
    assert topic is not None
    return renderer.render(alert_view(alert_row), topic, "sms", lang).text  # type: ignore[arg-type]


@pytest.mark.parametrize("lang", ["zh-CN", "en"])
async def test_severity_level_and_urgency_read_the_same_everywhere(served: tuple[Api, str, str], tmp_path: Path,
                                                                    lang: str) -> None:
    """The admin alert page, the list, the public page and the message all say the same severity and level."""
    api, alert_id, _ = served
    terms = Terms(lang)
    severity, level, urgency = terms("severity", "extreme"), terms("level", "orange"), terms("urgency", "expected")
    admin = await admin_page(api, f"/admin/alerts/{alert_id}?lang={lang}")
    listing = await _text(api, f"/admin?lang={lang}")
    public = await _text(api, f"/disclosures/{alert_id}?lang={lang}")
    row = await api.service.store.get_alert(alert_id)
    message = _message(api, row, tmp_path, lang)
    assert message == f"{severity}|{level}|{urgency}"
    for page in (admin, listing, public):
        assert severity in page and level in page
    assert urgency in public
    if lang == "zh-CN":
        assert (severity, level, urgency) == ("特别严重", "橙色预警", "尽快")
        assert not [word for word in RETIRED for page in (admin, listing, public, message) if word in page]


@pytest.mark.parametrize("lang", ["zh-CN", "en"])
async def test_channel_names_read_the_same_on_every_page(served: tuple[Api, str, str], lang: str) -> None:
    """The dashboard's deliveries, the public catalogue and the citizen's manage page name a channel alike."""
    api, alert_id, subscriber_id = served
    terms = Terms(lang)
    email, webhook = terms("channel", "email"), terms("channel", "webhook")
    admin = await admin_page(api, f"/admin/alerts/{alert_id}?lang={lang}")
    catalogue = await _text(api, f"/catalogue?lang={lang}")
    manage = await _text(api, manage_url("", api.service.secret, subscriber_id) + f"?lang={lang}")
    assert f"<td>{email}</td>" in admin and f'<option value="webhook">{webhook}</option>' in admin
    assert email in catalogue and webhook in catalogue
    assert f"<li>{email}{terms.colon}" in manage


async def test_statuses_of_a_cancelled_warning_agree(served: tuple[Api, str, str]) -> None:
    """A cancelled warning is 已撤销 on the dashboard and on its public page."""
    api, alert_id, _ = served
    response = await api.client.post(f"/v1/alerts/{alert_id}/cancel", headers=api.auth())
    assert response.status in (200, 202), await response.text()
    cancelled = Terms("zh-CN")("alert_status", "cancelled")
    assert cancelled == "已撤销"
    assert cancelled in await admin_page(api, f"/admin/alerts/{alert_id}")
    assert cancelled in await _text(api, f"/disclosures/{alert_id}")
