"""The dashboard's sign-in throttle (SPEC "Privacy of figures", last sentence) and the client address behind a
reverse proxy (`[server] trusted_proxies`): ten failed attempts from one client within ten minutes, and every
attempt from it gets 429 for ten minutes — right key or wrong; other clients, told apart through the proxy's
X-Forwarded-For, are not held; an X-Forwarded-For from anyone else proves nothing."""

from __future__ import annotations

import pytest
from aiohttp import ClientResponse

from notifier.models import Role
from tests.web.conftest import Api, ApiFactory
from tests.web.test_admin import login_form

pytestmark = pytest.mark.both_backends

PROXY = {"server": {"trusted_proxies": ["127.0.0.1", "::1"]}}


async def _attempt(api: Api, key: str, forwarded_for: str | None = None) -> ClientResponse:
    token = await login_form(api)
    headers = {"X-Forwarded-For": forwarded_for} if forwarded_for else {}
    return await api.client.post("/admin/login", data={"csrf": token, "key": key}, headers=headers,
                                 allow_redirects=False)


async def _fail_ten_times(api: Api, forwarded_for: str | None = None) -> None:
    for i in range(10):
        assert (await _attempt(api, f"nk_wrong_{i}", forwarded_for)).status == 401


async def test_after_ten_failures_even_the_right_key_gets_429(make_api: ApiFactory) -> None:
    """Ten wrong keys (401 each), then the right admin key is answered 429 with Retry-After of up to 10 minutes,
    the page says why, no session cookie is set, and /metrics counts the refusal."""
    admin = await make_api()
    await _fail_ten_times(admin)
    refused = await _attempt(admin, admin.keys[Role.ADMIN])
    assert refused.status == 429 and 590 <= int(refused.headers["Retry-After"]) <= 600
    assert "10 分钟" in await refused.text() or "10分钟" in await refused.text()
    assert "notifier_admin" not in {c.split("=", 1)[0] for c in refused.headers.getall("Set-Cookie", [])}
    metrics = await (await admin.client.get("/metrics")).text()
    assert 'notifier_rate_limited_total{limit="admin-login-locked"} 1.0' in metrics


async def test_nine_failures_leave_the_right_key_working(make_api: ApiFactory) -> None:
    """Nine wrong keys within the window still let the right key in."""
    admin = await make_api()
    for i in range(9):
        assert (await _attempt(admin, f"nk_wrong_{i}")).status == 401
    assert (await _attempt(admin, admin.keys[Role.ADMIN])).status == 303


async def test_another_instance_on_the_database_holds_the_lockout(make_api: ApiFactory) -> None:
    """Failures counted by one web process lock the client out of another on the same database too."""
    first = await make_api("shared")
    second = await make_api("shared", database={"url": first.service.settings.database.url})
    await _fail_ten_times(first)
    assert (await _attempt(second, second.keys[Role.ADMIN])).status == 429


async def test_behind_a_trusted_proxy_each_forwarded_client_is_counted_apart(make_api: ApiFactory) -> None:
    """With the proxy trusted, the client locked out is the one X-Forwarded-For names: another client behind the
    same proxy signs in; the locked one stays out whatever hops it writes further left."""
    admin = await make_api(**PROXY)
    await _fail_ten_times(admin, "198.51.100.1")
    assert (await _attempt(admin, admin.keys[Role.ADMIN], "198.51.100.1")).status == 429
    assert (await _attempt(admin, admin.keys[Role.ADMIN], "203.0.113.9, 198.51.100.1")).status == 429
    assert (await _attempt(admin, admin.keys[Role.ADMIN], "198.51.100.2")).status == 303


async def test_without_a_trusted_proxy_x_forwarded_for_is_ignored(make_api: ApiFactory) -> None:
    """With no trusted proxies, a client cannot dodge the lockout by writing a new X-Forwarded-For each time."""
    admin = await make_api()
    for i in range(10):
        assert (await _attempt(admin, f"nk_wrong_{i}", f"198.51.100.{i}")).status == 401
    assert (await _attempt(admin, admin.keys[Role.ADMIN], "198.51.100.77")).status == 429
