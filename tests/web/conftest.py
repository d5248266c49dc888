"""Fixtures for web tests: the real application served on a loopback port, a test client speaking real HTTP to
it, and API keys for each role."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from notifier.config import Settings, load_settings
from notifier.keys import create_key
from notifier.models import Role
from notifier.service import Service
from notifier.web import SERVICE, create_app
from tests import pg_schemas
from tests.conftest import empty_database, migrated_sqlite

MOBILE = "+8613812345678"
MOBILE_DIGITS = "13812345678"
EMAIL = "zhang.wei@example.org"
DEPARTMENT = "市环保局"  # the env.* topics' department: the fixture's publisher belongs to it
RECEIPT_TOKEN = "receipt-token-Zq8xW3"  # `sms_api`'s: its report pushes come to /v1/receipts/sms/aliyun?token=…
ALIYUN_SMS = {"provider": "aliyun", "endpoint": "http://127.0.0.1:9", "sign_name": "长治市人民政府",
              "template_code": "SMS_1", "access_key_id": "ak", "access_key_secret": "sk",
              "receipt_token": RECEIPT_TOKEN}


@dataclass
class Api:
    """A running app: the app, its client, its service, and a raw key per role (publisher scoped to `env.*`, of
    市环保局)."""

    app: web.Application
    client: TestClient[Any, Any]
    service: Service
    keys: dict[Role, str] = field(default_factory=dict)

    def auth(self, role: Role = Role.ADMIN) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.keys[role]}"}

    async def new_key(self, role: Role, topics: list[str] | None = None, department: str | None = None) -> str:
        """A raw key; a publisher belongs to `department` (default: the environment bureau, 市环保局)."""
        if role is Role.PUBLISHER:
            department = department or DEPARTMENT
        _, raw = await create_key(self.service.store, role, topics, department=department)
        return raw

    async def subscriber(self, **body: Any) -> dict[str, Any]:
        response = await self.client.post("/v1/subscribers", json=subscriber_body(**body), headers=self.auth())
        assert response.status == 201, await response.text()
        data: dict[str, Any] = await response.json()
        return data

    async def publish(self, role: Role = Role.ADMIN, headers: dict[str, str] | None = None,
                      **body: Any) -> tuple[int, dict[str, Any]]:
        response = await self.client.post("/v1/alerts", json=alert_body(**body),
                                          headers={**self.auth(role), **(headers or {})})
        return response.status, await response.json()


CSRF_FIELD = re.compile(r'name="csrf" value="([^"]+)"')


async def admin_page(api: Api, path: str, role: Role = Role.ADMIN) -> str:
    """A dashboard page's HTML, signed in (if not yet) through the real form with `role`'s key."""
    form = await api.client.get("/admin/login", allow_redirects=False)
    if form.status == 200:
        token = CSRF_FIELD.search(await form.text())
        assert token is not None
        signed = await api.client.post("/admin/login", data={"csrf": token.group(1), "key": api.keys[role]},
                                       allow_redirects=False)
        assert signed.status == 303, await signed.text()
    response = await api.client.get(path)
    assert response.status == 200, await response.text()
    return await response.text()


def subscriber_body(**overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "contacts": {"sms": MOBILE, "email": EMAIL},
        "region": "140402",
        "groups": ["elderly"],
        "subscriptions": [{"topic": "env.heavy-pollution", "channels": ["sms", "email"]}],
    }
    body.update(overrides)
    return body


def alert_body(**overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {"topic": "env.heavy-pollution", "headline": "重污染天气橙色预警",
                            "body": "明日起启动重污染天气橙色预警。", "severity": "moderate"}
    body.update(overrides)
    return body


def make_settings(tmp_path: Path, name: str = "t", *, allow_private: bool = True, database_url: str | None = None,
                  migrated: bool = True, **extra: Any) -> Settings:
    sqlite = tmp_path / f"{name}.db"
    overrides: dict[str, Any] = {
        "database": {"url": database_url or (migrated_sqlite(sqlite) if migrated else f"sqlite:///{sqlite}")},
        "channels": {"webhook": {"allow_private_networks": allow_private}},
        "worker": {"enabled": False},
    }
    overrides.update(extra)
    return load_settings(None, {}, overrides)


ApiFactory = Callable[..., Awaitable[Api]]


@pytest.fixture
async def make_api(tmp_path: Path, store_backend: str, request: pytest.FixtureRequest) -> AsyncIterator[ApiFactory]:
    """Yields `create(name="t", allow_private=True, **settings_overrides)`: a served app with keys for each role
    (each app on a database of its own: a SQLite file, or a PostgreSQL schema for tests marked both_backends)."""
    clients: list[TestClient[Any, Any]] = []
    schemas: list[str] = []
    pg_database = request.getfixturevalue("pg_database") if store_backend == "postgresql" else None
    fresh = empty_database(request)

    async def create(name: str = "t", *, allow_private: bool = True, **extra: Any) -> Api:
        url = None
        if pg_database:
            url = await pg_schemas.for_test(pg_database, empty=fresh)
            schemas.append(url)
        app = create_app(make_settings(tmp_path, name, allow_private=allow_private, database_url=url,
                                       migrated=not fresh, **extra))
        client: TestClient[Any, Any] = TestClient(TestServer(app, host="127.0.0.1"))
        await client.start_server()
        clients.append(client)
        api = Api(app=app, client=client, service=app[SERVICE])
        for role in Role:
            api.keys[role] = await api.new_key(role, ["env.*"] if role is Role.PUBLISHER else None)
        return api

    yield create
    for client in clients:
        await client.close()
    for url in schemas:  # the apps are closed: their schemas can be emptied for the next test
        await pg_schemas.give_back(str(pg_database), url)


@pytest.fixture
async def sms_api(make_api: ApiFactory) -> Api:
    """The app with Aliyun SMS configured (its receipt URL takes ?token=RECEIPT_TOKEN)."""
    return await make_api(channels={"sms": ALIYUN_SMS, "webhook": {"allow_private_networks": True}})


@pytest.fixture
async def api(make_api: ApiFactory) -> Api:
    """The app with private webhook destinations allowed and the worker off."""
    return await make_api()
