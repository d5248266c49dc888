"""Getting into the dashboard: the sign-in throttle (SPEC "Privacy of figures", last sentence) and the client
address behind a reverse proxy (`[server] trusted_proxies`) — ten failed attempts from one client within ten
minutes, and every attempt from it gets 429 for ten minutes, right key or wrong; other clients, told apart through
the proxy's X-Forwarded-For, are not held; an X-Forwarded-For from anyone else proves nothing — and sessions kept
in the store: a restart signs nobody out, two instances agree, ids are stored hashed."""

from __future__ import annotations

import hashlib
import re
import time

import pytest
from aiohttp import ClientResponse

from notifier.models import Role
from notifier.verification import PENDING_TTL, purge_unverified
from notifier.web.admin.session import SESSION_COOKIE
from tests.web.conftest import Api, ApiFactory
from tests.web.test_admin import login_form

pytestmark = pytest.mark.both_backends

CSRF = re.compile(r'name="csrf" value="([^"]+)"')
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


# ---------------------------------------------------------------- sessions kept in the store


def _session_cookie(response: ClientResponse) -> str:
    for header in response.headers.getall("Set-Cookie", []):
        name, _, rest = header.partition("=")
        if name == SESSION_COOKIE:
            return rest.split(";", 1)[0]
    raise AssertionError("no session cookie")


async def _dashboard(api: Api, session_id: str) -> ClientResponse:
    return await api.client.get("/admin", headers={"Cookie": f"{SESSION_COOKIE}={session_id}"},
                                allow_redirects=False)


async def test_a_restart_signs_nobody_out(make_api: ApiFactory) -> None:
    """A browser signed in before the app stopped is still signed in to the app started afresh on the database."""
    first = await make_api("restart")
    session_id = _session_cookie(await _attempt(first, first.keys[Role.ADMIN]))
    url = first.service.settings.database.url
    await first.client.close()
    again = await make_api("restart", database={"url": url})
    assert (await _dashboard(again, session_id)).status == 200


async def test_two_instances_agree_on_sign_in_and_sign_out(make_api: ApiFactory) -> None:
    """A session made by one instance works on another on the same database; signing out on the second ends it
    on the first too."""
    first = await make_api("pair")
    second = await make_api("pair", database={"url": first.service.settings.database.url})
    session_id = _session_cookie(await _attempt(first, first.keys[Role.ADMIN]))
    page = await _dashboard(second, session_id)
    assert page.status == 200
    token = CSRF.search(await page.text())
    assert token is not None
    out = await second.client.post("/admin/logout", data={"csrf": token.group(1)},
                                   headers={"Cookie": f"{SESSION_COOKIE}={session_id}"}, allow_redirects=False)
    assert out.status == 303
    assert (await _dashboard(first, session_id)).status == 303


async def test_the_store_holds_session_ids_only_hashed(make_api: ApiFactory) -> None:
    """The table has the SHA-256 of the session id, never the id a browser could present."""
    admin = await make_api()
    session_id = _session_cookie(await _attempt(admin, admin.keys[Role.ADMIN]))
    rows = [tuple(r) for r in await admin.service.store.backend.reader.fetch("SELECT * FROM admin_sessions")]
    assert len(rows) == 1 and hashlib.sha256(session_id.encode()).hexdigest() in rows[0]
    assert all(session_id not in str(value) for value in rows[0])


async def test_the_sweep_removes_sessions_unused_for_a_day(make_api: ApiFactory) -> None:
    """The dispatcher's daily purge deletes session rows unused for a day; a session in use stays."""
    admin = await make_api()
    _session_cookie(await _attempt(admin, admin.keys[Role.ADMIN]))
    await purge_unverified(admin.service.store, now=time.time() + 3600)
    assert len(await admin.service.store.backend.reader.fetch("SELECT id_hash FROM admin_sessions")) == 1
    await purge_unverified(admin.service.store, now=time.time() + PENDING_TTL + 60)
    assert await admin.service.store.backend.reader.fetch("SELECT id_hash FROM admin_sessions") == []
