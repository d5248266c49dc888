"""One-step unsubscribe (`/unsubscribe/<token>`): a GET shows what will stop and changes nothing; a POST from the
page (or an RFC 8058 one-click POST) stops the topic or everything; forged, cross-site and stale requests change
nothing."""

from __future__ import annotations

import logging
import re
from datetime import UTC, datetime, timedelta

import pytest

from notifier import tokens
from notifier.links import unsubscribe_url
from tests.web.conftest import Api

pytestmark = pytest.mark.both_backends

TOPIC = "env.heavy-pollution"
OTHER = "transit.fare-change"
NONCE = re.compile(r'name="nonce" value="([^"]+)"')


async def _subscriber(api: Api) -> str:
    created = await api.subscriber(subscriptions=[{"topic": TOPIC, "channels": ["sms", "email"]},
                                                  {"topic": OTHER, "channels": ["email"]}])
    return str(created["id"])


def _path(api: Api, subscriber_id: str, topic: str | None = TOPIC, **kw: datetime) -> str:
    return "/" + unsubscribe_url("", api.service.secret, subscriber_id, topic, **kw).lstrip("/")


async def _topics(api: Api, subscriber_id: str) -> list[str]:
    record = await api.service.store.get_subscriber(subscriber_id)
    assert record is not None
    return [topic for topic, _, _ in record.subscriptions]


async def _nonce(api: Api, path: str) -> str:
    response = await api.client.get(path)
    found = NONCE.search(await response.text())
    assert found is not None
    return found.group(1)


async def test_get_shows_the_topic_and_channels_and_changes_nothing(api: Api) -> None:
    """The confirmation page names the topic and its channels; fetching it (as link scanners do) unsubscribes
    no one."""
    subscriber_id = await _subscriber(api)
    for _ in range(3):
        response = await api.client.get(_path(api, subscriber_id))
        assert response.status == 200
    page = await response.text()
    assert "重污染天气预警" in page and "短信、电子邮件" in page and 'method="post"' in page
    assert await _topics(api, subscriber_id) == [TOPIC, OTHER]


async def test_post_from_the_page_stops_only_that_topic(api: Api) -> None:
    """Confirming on the page removes the link's topic and keeps the others."""
    subscriber_id = await _subscriber(api)
    path = _path(api, subscriber_id)
    response = await api.client.post(path, data={"nonce": await _nonce(api, path), "scope": "topic"})
    assert response.status == 200
    assert "已退订" in await response.text()
    assert await _topics(api, subscriber_id) == [OTHER]


async def test_post_with_scope_all_stops_everything(api: Api) -> None:
    """The page's second button unsubscribes from every topic."""
    subscriber_id = await _subscriber(api)
    path = _path(api, subscriber_id)
    response = await api.client.post(path, data={"nonce": await _nonce(api, path), "scope": "all"})
    assert response.status == 200
    assert await _topics(api, subscriber_id) == []


async def test_rfc8058_one_click_post_needs_no_page(api: Api) -> None:
    """A mail provider's `List-Unsubscribe=One-Click` POST stops the topic at once."""
    subscriber_id = await _subscriber(api)
    response = await api.client.post(_path(api, subscriber_id), data={"List-Unsubscribe": "One-Click"})
    assert response.status == 200
    assert await _topics(api, subscriber_id) == [OTHER]


async def test_one_click_for_a_deleted_subscriber_still_answers_200(api: Api) -> None:
    """There is nothing left to stop, and the mail provider is told so without an error."""
    subscriber_id = await _subscriber(api)
    await api.service.store.forget_subscriber(subscriber_id)
    response = await api.client.post(_path(api, subscriber_id), data={"List-Unsubscribe": "One-Click"})
    assert response.status == 200


async def test_a_post_without_the_pages_nonce_is_refused(api: Api) -> None:
    """A form POST that did not come from our page (no nonce, or a nonce for another link) changes nothing."""
    subscriber_id = await _subscriber(api)
    other_nonce = await _nonce(api, _path(api, await _subscriber(api)))
    for data in ({"scope": "all"}, {"scope": "all", "nonce": other_nonce}, {"scope": "all", "nonce": "x.y"}):
        response = await api.client.post(_path(api, subscriber_id), data=data)
        assert response.status == 403
    assert await _topics(api, subscriber_id) == [TOPIC, OTHER]


@pytest.mark.parametrize("headers", [{"Sec-Fetch-Site": "cross-site"}, {"Sec-Fetch-Site": "same-site"},
                                     {"Origin": "https://evil.example"}])
async def test_a_cross_site_post_is_refused(api: Api, headers: dict[str, str]) -> None:
    """A browser POST from another site is refused even with a valid nonce, and so is a cross-site one-click."""
    subscriber_id = await _subscriber(api)
    path = _path(api, subscriber_id)
    nonce = await _nonce(api, path)
    for data in ({"nonce": nonce, "scope": "all"}, {"List-Unsubscribe": "One-Click"}):
        response = await api.client.post(path, data=data, headers=headers)
        assert response.status == 403
    assert await _topics(api, subscriber_id) == [TOPIC, OTHER]


async def test_a_same_origin_browser_post_is_accepted(api: Api) -> None:
    """The page's own form, posted by a browser that says where it comes from, works."""
    subscriber_id = await _subscriber(api)
    path = _path(api, subscriber_id)
    origin = str(api.client.make_url("")).rstrip("/")
    response = await api.client.post(path, data={"nonce": await _nonce(api, path), "scope": "topic"},
                                     headers={"Sec-Fetch-Site": "same-origin", "Origin": origin})
    assert response.status == 200
    assert await _topics(api, subscriber_id) == [OTHER]


async def test_tampered_and_wrong_purpose_tokens_show_an_invalid_link_page(api: Api) -> None:
    """A changed token, or a manage token used here, gets a 404 page and changes nothing."""
    subscriber_id = await _subscriber(api)
    path = _path(api, subscriber_id)
    manage = tokens.make_token(api.service.secret, tokens.MANAGE, subscriber_id)
    for bad in (path[:-2] + ("AA" if not path.endswith("AA") else "BB"), f"/unsubscribe/{manage}"):
        response = await api.client.get(bad)
        assert response.status == 404
        assert "链接无效" in await response.text()
        assert (await api.client.post(bad, data={"List-Unsubscribe": "One-Click"})).status == 404
    assert await _topics(api, subscriber_id) == [TOPIC, OTHER]


async def test_an_expired_link_shows_an_expired_page(api: Api) -> None:
    """A link older than its lifetime gets 410 and points to TD for SMS."""
    subscriber_id = await _subscriber(api)
    path = _path(api, subscriber_id, now=datetime.now(UTC) - timedelta(days=400))
    response = await api.client.get(path)
    assert response.status == 410
    assert "回复 TD" in await response.text()


async def test_done_page_links_to_a_working_manage_page(api: Api) -> None:
    """After unsubscribing, the page links to the subscriber's manage page, which opens."""
    subscriber_id = await _subscriber(api)
    response = await api.client.post(_path(api, subscriber_id), data={"List-Unsubscribe": "One-Click"})
    manage = re.search(r'href="[^"]*(/manage/[^"?]+)"', await response.text())
    assert manage is not None
    assert (await api.client.get(manage.group(1))).status == 200


async def test_english_on_request(api: Api) -> None:
    """`?lang=en` renders the page in English."""
    subscriber_id = await _subscriber(api)
    response = await api.client.get(_path(api, subscriber_id) + "?lang=en")
    page = await response.text()
    assert '<html lang="en">' in page and "Heavy air pollution warning" in page and "SMS, Email" in page


async def test_page_is_self_contained_and_locked_down(api: Api) -> None:
    """Nothing is loaded from elsewhere; CSP, no-store and a same-origin referrer policy are set."""
    subscriber_id = await _subscriber(api)
    response = await api.client.get(_path(api, subscriber_id))
    page = await response.text()
    assert not re.search(r"""(src|href)=["']?(https?:)?//""", page)
    assert "default-src 'none'" in response.headers["Content-Security-Policy"]
    assert response.headers["Cache-Control"] == "no-store"
    assert response.headers["Referrer-Policy"] == "same-origin"


async def test_the_access_log_never_holds_the_token(api: Api, caplog: pytest.LogCaptureFixture) -> None:
    """The access log line shows /unsubscribe/… instead of the token."""
    subscriber_id = await _subscriber(api)
    path = _path(api, subscriber_id)
    token = path.rsplit("/", 1)[1]
    with caplog.at_level(logging.INFO, logger="aiohttp.access"):
        await api.client.get(path)
    lines = [r.getMessage() for r in caplog.records if r.name == "aiohttp.access"]
    assert any("/unsubscribe/…" in line for line in lines)
    assert not any(token in line or token in str(vars(r)) for r in caplog.records for line in [r.getMessage()])
