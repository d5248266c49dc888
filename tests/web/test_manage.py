"""The subscriber's own page (`/manage/<token>`): what is held (masked), changes through protected forms with
inline errors, a JSON download of everything (unmasked), and deletion after a confirmation."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime, timedelta

import pytest

from notifier import tokens
from notifier.coverage import alert_coverage
from notifier.links import manage_url
from tests.web.conftest import EMAIL, MOBILE, MOBILE_DIGITS, Api
from tests.web.markup import unlabelled_controls

pytestmark = pytest.mark.both_backends

TOPIC = "env.heavy-pollution"
OTHER = "transit.fare-change"
NONCE = re.compile(r'name="nonce" value="([^"]+)"')


async def _subscriber(api: Api) -> str:
    created = await api.subscriber(quiet_hours={"start": "22:00", "end": "07:00"})
    return str(created["id"])


def _path(api: Api, subscriber_id: str, **kw: datetime) -> str:
    return manage_url("", api.service.secret, subscriber_id, **kw)


async def _nonce(api: Api, path: str) -> str:
    found = NONCE.search(await (await api.client.get(path)).text())
    assert found is not None
    return found.group(1)


async def _subscriptions(api: Api, subscriber_id: str) -> list[tuple[str, list[str]]]:
    record = await api.service.store.get_subscriber(subscriber_id)
    assert record is not None
    return [(topic, channels) for topic, channels, _ in record.subscriptions]


async def test_page_shows_what_is_held_with_contacts_masked(api: Api) -> None:
    """Channels, district, group, quiet hours, consent and topics are shown; the number and email are masked."""
    page = await (await api.client.get(_path(api, await _subscriber(api)))).text()
    for shown in ("138****5678", "z***@example.org", "城区", "老年人", "22:00–07:00", "重污染天气预警", "同意记录"):
        assert shown in page, shown
    assert MOBILE_DIGITS not in page and EMAIL not in page


async def test_topic_form_changes_topics_and_channels(api: Api) -> None:
    """Ticking a new topic and unticking a channel saves both, then shows the page again with a notice."""
    subscriber_id = await _subscriber(api)
    path = _path(api, subscriber_id)
    response = await api.client.post(f"{path}/topics", allow_redirects=False, data=[
        ("nonce", await _nonce(api, path)), (f"topic:{TOPIC}", "email"), (f"topic:{OTHER}", "sms"),
        (f"topic:{OTHER}", "email")])
    assert response.status == 303
    assert await _subscriptions(api, subscriber_id) == [(TOPIC, ["email"]), (OTHER, ["sms", "email"])]
    assert "已保存" in await (await api.client.get(response.headers["Location"])).text()


async def test_a_topic_with_no_channel_is_unsubscribed(api: Api) -> None:
    """Unticking every channel of a topic removes that subscription."""
    subscriber_id = await _subscriber(api)
    path = _path(api, subscriber_id)
    response = await api.client.post(f"{path}/topics", data={"nonce": await _nonce(api, path)},
                                     allow_redirects=False)
    assert response.status == 303
    assert await _subscriptions(api, subscriber_id) == []


async def test_a_channel_without_a_contact_is_refused_inline_and_nothing_changes(api: Api) -> None:
    """Asking for WeChat without a WeChat contact shows the error beside the topic (422); nothing is saved."""
    subscriber_id = await _subscriber(api)
    path = _path(api, subscriber_id)
    response = await api.client.post(f"{path}/topics", data=[
        ("nonce", await _nonce(api, path)), (f"topic:{TOPIC}", "wechat"), (f"topic:{OTHER}", "email")])
    assert response.status == 422
    page = await response.text()
    assert f'id="err-{TOPIC}"' in page and "没有可用的该渠道联系方式" in page
    assert await _subscriptions(api, subscriber_id) == [(TOPIC, ["sms", "email"])]


async def test_settings_form_changes_locale_and_quiet_hours(api: Api) -> None:
    """Language and quiet hours are saved; both times empty clears quiet hours."""
    subscriber_id = await _subscriber(api)
    path = _path(api, subscriber_id)
    data = {"nonce": await _nonce(api, path), "locale": "en", "quiet_start": "23:30", "quiet_end": "6:00"}
    assert (await api.client.post(f"{path}/settings", data=data, allow_redirects=False)).status == 303
    record = await api.service.store.get_subscriber(subscriber_id)
    assert record is not None and (record.locale, record.quiet_start, record.quiet_end) == ("en", 1410, 360)
    data.update(quiet_start="", quiet_end="")
    assert (await api.client.post(f"{path}/settings", data=data, allow_redirects=False)).status == 303
    record = await api.service.store.get_subscriber(subscriber_id)
    assert record is not None and (record.quiet_start, record.quiet_end) == (None, None)


@pytest.mark.parametrize(("start", "end", "field"), [("25:00", "07:00", "quiet_start"), ("22:00", "7pm", "quiet_end"),
                                                     ("22:00", "22:00", "quiet_start"), ("22:00", "", "quiet_end")])
async def test_bad_quiet_hours_are_shown_inline_and_nothing_changes(api: Api, start: str, end: str,
                                                                     field: str) -> None:
    """A bad time is marked on its field (aria-invalid, 422), the typed value kept, and nothing is saved."""
    subscriber_id = await _subscriber(api)
    path = _path(api, subscriber_id)
    response = await api.client.post(f"{path}/settings", data={
        "nonce": await _nonce(api, path), "locale": "en", "quiet_start": start, "quiet_end": end})
    assert response.status == 422
    page = await response.text()
    assert f'id="err-{field}"' in page and 'aria-invalid="true"' in page and f'value="{start}"' in page
    record = await api.service.store.get_subscriber(subscriber_id)
    assert record is not None and (record.locale, record.quiet_start, record.quiet_end) == ("zh-CN", 1320, 420)


@pytest.mark.parametrize("headers", [{}, {"Sec-Fetch-Site": "cross-site"}, {"Origin": "https://evil.example"}])
async def test_forms_refuse_missing_nonces_and_cross_site_posts(api: Api, headers: dict[str, str]) -> None:
    """Without the page's nonce, or from another site, every form answers 403 and changes nothing."""
    subscriber_id = await _subscriber(api)
    path = _path(api, subscriber_id)
    nonce = "" if not headers else await _nonce(api, path)
    for suffix, data in (("/topics", {"nonce": nonce}), ("/settings", {"nonce": nonce, "locale": "en"}),
                         ("/delete", {"nonce": nonce})):
        response = await api.client.post(path + suffix, data=data, headers=headers)
        assert response.status == 403, suffix
    assert await api.service.store.get_subscriber(subscriber_id) is not None
    assert await _subscriptions(api, subscriber_id) == [(TOPIC, ["sms", "email"])]


async def test_download_is_an_attachment_with_everything_unmasked(api: Api) -> None:
    """data.json carries the contacts in full, the profile, consent, subscriptions and deliveries."""
    subscriber_id = await _subscriber(api)
    status, _ = await api.publish()
    assert status == 202
    response = await api.client.get(f"{_path(api, subscriber_id)}/data.json")
    assert response.status == 200 and response.content_type == "application/json"
    assert response.headers["Content-Disposition"].startswith("attachment;")
    data = json.loads(await response.text())
    assert {c["channel"]: c["address"] for c in data["contacts"]} == {"sms": MOBILE, "email": EMAIL}
    assert data["subscriber"]["region"]["name"] == "城区"
    assert data["subscriber"]["quiet_hours"]["start"] == "22:00"
    assert data["subscriptions"] == [{"topic": TOPIC, "channels": ["sms", "email"], "min_severity_rank": None}]
    assert {d["channel"] for d in data["deliveries"]} == {"sms", "email"}


async def test_delete_page_asks_first_and_changes_nothing(api: Api) -> None:
    """GET of the delete page only asks; the subscriber is still there."""
    subscriber_id = await _subscriber(api)
    response = await api.client.get(f"{_path(api, subscriber_id)}/delete")
    assert response.status == 200 and "确认删除" in await response.text()
    assert await api.service.store.get_subscriber(subscriber_id) is not None


async def test_confirmed_delete_removes_everything_and_keeps_coverage(api: Api) -> None:
    """After the confirmed POST the subscriber is gone, the link says so, and the alert's coverage is unchanged."""
    subscriber_id = await _subscriber(api)
    _, alert = await api.publish()
    before = await alert_coverage(api.service.store, alert["id"])
    path = _path(api, subscriber_id)
    response = await api.client.post(f"{path}/delete", data={"nonce": await _nonce(api, f"{path}/delete")})
    assert response.status == 200 and "已删除" in await response.text()
    assert await api.service.store.get_subscriber(subscriber_id) is None
    assert (await api.client.get(path)).status == 404
    after = await alert_coverage(api.service.store, alert["id"])
    assert (after.targeted, after.by_region) == (before.targeted, before.by_region)
    rows, _ = await api.service.store.list_deliveries(alert["id"], 10, None)
    assert {r.status for r in rows} == {"cancelled", "skipped"}  # skipped: the fallback that was never needed


async def test_expired_and_wrong_purpose_links_are_refused(api: Api) -> None:
    """An expired manage link gets 410; an unsubscribe token on the manage page gets 404."""
    subscriber_id = await _subscriber(api)
    expired = _path(api, subscriber_id, now=datetime.now(UTC) - timedelta(days=91))
    assert (await api.client.get(expired)).status == 410
    unsubscribe = tokens.make_token(api.service.secret, tokens.UNSUBSCRIBE, subscriber_id)
    for suffix in ("", "/data.json", "/delete"):
        assert (await api.client.get(f"/manage/{unsubscribe}{suffix}")).status == 404


async def test_english_switch_and_accessible_markup(api: Api) -> None:
    """`?lang=en` gives English; every form control has a label and the page has one h1."""
    page = await (await api.client.get(_path(api, await _subscriber(api)) + "?lang=en")).text()
    assert '<html lang="en">' in page and "My subscription" in page and "Older people" in page
    assert page.count("<h1>") == 1
    assert unlabelled_controls(page) == []
    assert 'lang="zh-CN"' in page  # the switch back to Chinese


async def test_page_loads_nothing_from_elsewhere(api: Api) -> None:
    """No script, no external stylesheet or image; the CSP allows only the page's own inline style."""
    response = await api.client.get(_path(api, await _subscriber(api)))
    page = await response.text()
    assert "<script" not in page and not re.search(r"""(src|href)=["']?(https?:)?//""", page)
    assert "default-src 'none'" in response.headers["Content-Security-Policy"]
