"""Shared fixtures: settings on a temporary SQLite file, an opened Service, the fake gateways on loopback, and a
factory for subscribers. Everything talks over real sockets on 127.0.0.1."""

from __future__ import annotations

import asyncio
import atexit
import concurrent.futures
import functools
import logging
import os
import secrets
import shutil
import tempfile
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any, NoReturn, TypeVar

import pytest

from notifier.config import Settings, load_settings
from notifier.fakes.smtp import RunningSmtp, start_smtp
from notifier.fakes.webhook_receiver import RunningReceiver, start_receiver
from notifier.service import Service
from notifier.store import open_store
from notifier.store.records import SubscriberRecord
from notifier.subscribers import create_subscriber
from subscriptions.models import SubscriberIn
from tests import pg_schemas
from tests.cli_run import Cli

pytest_plugins = ["tests.log_scanner"]  # fails the run when any log record carries a contact

# aiosqlite logs every SQL statement with its parameters (contacts among them) at DEBUG.
logging.getLogger("aiosqlite").setLevel(logging.INFO)

SettingsFactory = Callable[..., Settings]
T = TypeVar("T")

# ---------------------------------------------------------------- store back-ends
# Tests in modules marked `pytestmark = pytest.mark.both_backends` run once on SQLite and once on PostgreSQL
# (`make_settings` picks the url); every other test runs on SQLite only. PostgreSQL: one database per session
# (created on the maintenance database of NOTIFIER_TEST_PG, dropped at the end), one schema per test (the url's
# `?search_path=` query parameter, which asyncpg passes to the server), migrated already: emptied after an earlier
# test and reused (tests/pg_schemas.py) unless the test is marked `empty_database`. Unreachable PostgreSQL skips
# those tests, except under CI=true, where it fails them.
BACKENDS = ("sqlite", "postgresql")
PG_MAINTENANCE = os.environ.get("NOTIFIER_TEST_PG", "postgresql://postgres@127.0.0.1:5432/test")


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "store_backend" in metafunc.fixturenames and metafunc.definition.get_closest_marker("both_backends"):
        metafunc.parametrize("store_backend", BACKENDS, indirect=True)


@pytest.fixture
def store_backend(request: pytest.FixtureRequest) -> str:
    """The store back-end of this test: "sqlite", or each of BACKENDS for tests marked `both_backends`."""
    return str(getattr(request, "param", "sqlite"))


def _pg_unavailable(reason: str) -> NoReturn:
    if os.environ.get("CI", "").lower() in ("true", "1", "yes"):
        pytest.fail(f"PostgreSQL is required under CI: {reason}", pytrace=False)
    pytest.skip(f"PostgreSQL not reachable at {PG_MAINTENANCE.split('@')[-1]}: {reason}")


def in_own_loop(work: Callable[[], Awaitable[T]]) -> T:
    """`work` on a loop of its own in a thread of its own: fixtures may run while a test's loop is running."""
    with concurrent.futures.ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(asyncio.run, work()).result()  # type: ignore[arg-type]


def _pg_run(statement: str, url: str = PG_MAINTENANCE) -> None:
    """Run one statement on a connection of its own."""
    in_own_loop(lambda: pg_schemas.execute(url, statement))


@pytest.fixture(scope="session")
def pg_database() -> Iterator[str]:
    """A fresh database for this session's PostgreSQL tests (its url), dropped at the end."""
    name = f"notifier_test_{secrets.token_hex(6)}"
    try:
        _pg_run(f'CREATE DATABASE "{name}"')
    except Exception as exc:  # refused, timed out, or a server that refuses us (asyncpg's PostgresError)
        _pg_unavailable(f"{type(exc).__name__}: {exc}")
    base = PG_MAINTENANCE.rsplit("/", 1)[0]
    try:
        yield f"{base}/{name}"
    finally:
        _pg_run(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@functools.cache
def _sqlite_template() -> Path:
    """This process's migrated empty SQLite database, made once and removed when the process ends."""
    folder = tempfile.mkdtemp(prefix="notifier-template-")
    atexit.register(shutil.rmtree, folder, True)
    template = Path(folder) / "migrated.db"

    async def migrate() -> None:
        store = await open_store(load_settings(None, {}, {"database": {"url": f"sqlite:///{template}"}}))
        await store.close()  # the last connection: the log is copied into the file and removed

    in_own_loop(migrate)
    assert not template.with_name("migrated.db-wal").exists()
    return template


def migrated_sqlite(path: Path) -> str:
    """The url of a SQLite database at `path` with every migration applied: a copy of one this process migrated
    once (migrating each test's database took ~45 ms, ~30 % of the test set-ups that open a store). A file that
    exists already is left as it is. The migrations themselves are tested on fresh files (tests/test_cli.py's
    `db upgrade`, tests/store/test_migration_*.py, every command-line and served test)."""
    if not path.exists():
        shutil.copyfile(_sqlite_template(), path)
    return f"sqlite:///{path}"


def empty_database(request: pytest.FixtureRequest) -> bool:
    """The test is marked `empty_database`: its database starts with no migration applied."""
    return request.node.get_closest_marker("empty_database") is not None


@pytest.fixture
def pg_schema_url(pg_database: str, request: pytest.FixtureRequest) -> Iterator[str]:
    """The session database's url with a schema of this test's own as its search_path: migrated and empty (one an
    earlier test of this process used, emptied: tests/pg_schemas.py), or new and empty (`empty_database`)."""
    url = in_own_loop(lambda: pg_schemas.for_test(pg_database, empty=empty_database(request)))
    yield url
    in_own_loop(lambda: pg_schemas.give_back(pg_database, url))


def _merge(base: dict[str, Any], extra: dict[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for key, value in extra.items():
        out[key] = _merge(out[key], value) if isinstance(value, dict) and isinstance(out.get(key), dict) else value
    return out


@pytest.fixture
def database_url(tmp_path: Path, store_backend: str, request: pytest.FixtureRequest) -> str:
    """This test's fresh database: a SQLite file in tmp_path, or (tests marked `both_backends`, on PostgreSQL)
    a schema of its own."""
    if store_backend == "sqlite":
        return f"sqlite:///{tmp_path / 'notifier.db'}"
    return str(request.getfixturevalue("pg_schema_url"))


@pytest.fixture
def make_settings(database_url: str, request: pytest.FixtureRequest) -> SettingsFactory:
    """Settings on a fresh database (a SQLite file, or a PostgreSQL schema of its own for tests marked
    `both_backends`); webhooks may target loopback; fast retries; worker off. A SQLite file is migrated already
    (`migrated_sqlite`) unless the test is marked `empty_database`."""
    sqlite = database_url.removeprefix("sqlite:///") if database_url.startswith("sqlite:///") else None
    migrated = not empty_database(request)

    def create(**overrides: Any) -> Settings:
        base: dict[str, Any] = {
            "database": {"url": migrated_sqlite(Path(sqlite)) if sqlite and migrated else database_url},
            "channels": {"webhook": {"allow_private_networks": True, "timeout": 2.0}},
            "worker": {"enabled": False, "backoff_initial": 0.01, "backoff_max": 0.05, "poll_interval": 0.05},
        }
        return load_settings(None, {}, _merge(base, overrides))

    return create


@pytest.fixture
def cli(tmp_path: Path, database_url: str) -> Cli:
    """The `notifier` command line in a real process, configured for this test's database (tests/cli_run.py)."""
    return Cli(tmp_path, database_url)


@pytest.fixture
async def receiver() -> AsyncIterator[RunningReceiver]:
    running = await start_receiver()
    try:
        yield running
    finally:
        await running.stop()


@pytest.fixture
async def smtp() -> AsyncIterator[RunningSmtp]:
    running = await start_smtp()
    try:
        yield running
    finally:
        await running.stop()


@pytest.fixture
async def service(make_settings: SettingsFactory, smtp: RunningSmtp) -> AsyncIterator[Service]:
    """An opened service with webhook and email (to the fake SMTP server) configured, worker not running."""
    settings = make_settings(channels={"email": {"host": smtp.host, "port": smtp.port, "tls": "none",
                                                  "sender": "长治市政务公开 <notify@changzhi.gov.cn>"}})
    async with Service(settings) as running:
        yield running


SubscriberFactory = Callable[..., Awaitable[SubscriberRecord]]


@pytest.fixture
def make_subscriber(service: Service) -> SubscriberFactory:
    """create(contacts=…, channels=[…], region=…, groups=[…], topic=…, min_severity=…, quiet_hours=…)."""

    async def create(*, contacts: dict[str, str], channels: list[str] | None = None, region: str = "140402",
                     groups: list[str] | None = None, topic: str = "env.heavy-pollution",
                     min_severity: str | None = None, quiet_hours: dict[str, str] | None = None,
                     locale: str = "zh-CN") -> SubscriberRecord:
        body = SubscriberIn.model_validate({
            "contacts": contacts, "region": region, "groups": groups or [], "locale": locale,
            "quiet_hours": quiet_hours,
            "subscriptions": [{"topic": topic, "channels": channels or [k for k in contacts if k != "webhook_secret"],
                               "min_severity": min_severity}]})
        record, _ = await create_subscriber(service.store, body, allow_private_webhooks=True)
        return record

    return create


async def settle(service: Service, timeout: float = 20.0) -> None:
    """Run the dispatcher until nothing is pending (retries included)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while loop.time() < deadline:
        await service.dispatcher.drain(timeout=timeout)
        stats = await service.store.queue_stats()
        if not any(stats.get(s, 0) for s in ("queued", "sending")):
            return
        await asyncio.sleep(0.02)
    raise AssertionError(f"deliveries still pending after {timeout} s: {await service.store.queue_stats()}")
