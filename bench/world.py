"""What a benchmark case runs against: the fake gateways (each its own process, with the case's latency and
transient failures), the database (a SQLite file, or a fresh PostgreSQL database dropped afterwards), the
configuration file every notifier process of the case reads, and the subscribers."""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, replace
from pathlib import Path

import asyncpg

from bench.procs import Child, start
from notifier.config import Settings, load_settings
from notifier.database import city_catalogue, open_database, seed_catalogue
from notifier.keys import create_key
from notifier.models import Role
from notifier.store.records import SubscriberRecord
from subscriptions.contacts import generate_webhook_secret

TOPIC = "env.heavy-pollution"
PROBE_TOPIC = "disaster.weather-warning"
# Red warnings that fall back, each to one person by SMS then a webhook, whose number's report says UNDELIV: a person
# in each region (one warning a region, so that no number gets two texts: the gateway would count a repeat), each
# number outside the fan-out's (+86138…).
FALLBACK_TOPIC = "disaster.emergency"
FALLBACK_REGIONS = ("140402", "140411", "140421", "140423", "140424", "140425", "140426", "140427", "140428",
                    "140429", "140430", "140431", "140481")  # the bundled catalogue's


def fallback_number(n: int) -> str:
    """The number of the fallback probes' person in FALLBACK_REGIONS[n]."""
    return f"+86139999999{n:02d}"
AK, SK = "LTAIbenchAccessKey", "bench-access-key-secret"
TC_ID, TC_KEY, TC_APP = "AKIDbenchSecretId", "bench-tencent-secret-key", "1400000001"
WX_APP, WX_SECRET, WX_TOKEN = "wxbench000000001", "bench-app-secret", "bench-callback-token"
RECEIPT_TOKEN = "r" * 40
PG_MAINTENANCE = os.environ.get("NOTIFIER_BENCH_PG", "postgresql://postgres@127.0.0.1:5432/test")
INSERT_CHUNK = 20_000


@dataclass(frozen=True)
class Weather:
    latency: float = 0.0
    fail_rate: float = 0.0

    def argv(self) -> list[str]:
        return ["--latency", str(self.latency), "--fail-rate", str(self.fail_rate), "--seed", "7", "--count-repeats"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start_fakes(kinds: set[str], weather: Weather, logs: Path, sms_provider: str = "aliyun",
                reports_to: str | None = None) -> dict[str, Child]:
    """A fake gateway process per channel kind (and the probe receiver), each with the case's weather; the SMS one
    is `sms_provider`'s (aliyun, tencent). `reports_to`: notifier's base URL, where the Aliyun SMS fake pushes its
    delivery reports and the WeChat fake its TEMPLATESENDJOBFINISH events, as the real ones do (else they keep them)."""
    fakes: dict[str, Child] = {}
    reports: dict[str, list[str]] = {"sms": [], "wechat": []}
    if reports_to is not None:
        reports = {"sms": ["--receipt-url", f"{reports_to}/v1/receipts/sms/aliyun?token={RECEIPT_TOKEN}"],
                   "wechat": ["--callback-url", f"{reports_to}/v1/wechat/callback"]}
    try:
        fakes["webhook"] = start("webhook receiver", ["-m", "notifier.fakes.webhook_receiver", *weather.argv()],
                                 log=logs / "fake-webhook.log")
        fakes["probe"] = start("probe receiver", ["-m", "notifier.fakes.webhook_receiver", "--count-repeats"],
                               log=logs / "fake-probe.log")
        if reports_to is not None and "sms" in kinds and sms_provider == "aliyun":  # the fallback probes' webhook
            fakes["fallback"] = start("fallback receiver", ["-m", "notifier.fakes.webhook_receiver", "--count-repeats"],
                                      log=logs / "fake-fallback.log")
        if "sms" in kinds and sms_provider == "tencent":
            fakes["sms"] = start("tencent sms", ["-m", "notifier.fakes.tencent_sms", "--secret-id", TC_ID,
                                                 "--secret-key", TC_KEY, "--sdk-app-id", TC_APP, *weather.argv()],
                                 log=logs / "fake-sms.log")
        elif "sms" in kinds:
            fakes["sms"] = start("aliyun sms", ["-m", "notifier.fakes.aliyun_sms", "--access-key-id", AK,
                                                "--access-key-secret", SK, *reports["sms"], *weather.argv()],
                                 log=logs / "fake-sms.log")
        if "wechat" in kinds:
            fakes["wechat"] = start("wechat", ["-m", "notifier.fakes.wechat", "--app-id", WX_APP, "--app-secret",
                                               WX_SECRET, "--token", WX_TOKEN, *reports["wechat"], *weather.argv()],
                                    log=logs / "fake-wechat.log")
    except BaseException:
        for child in fakes.values():
            child.stop()
        raise
    return fakes


def config_text(db_url: str, port: int, fakes: dict[str, Child], worker: dict[str, float | int | str],
                sms_provider: str = "aliyun", wechat_rate: int = 5000) -> str:
    """The case's notifier.toml: the product's defaults except where a benchmark must say otherwise (loopback
    webhooks allowed, the fakes' endpoints, provider rates of a production account)."""
    lines = [f'[database]\nurl = "{db_url}"\n', f'[server]\nhost = "127.0.0.1"\nport = {port}\n',
             "[worker]", *(f"{k} = {v}" for k, v in worker.items()), "",
             "[channels.webhook]\nallow_private_networks = true\n"]
    if "sms" in fakes and sms_provider == "tencent":  # the fake `start_fakes` started for the same provider
        # Tencent's SendSms: 200 numbers a request; 1,000 requests a second, as for Aliyun below.
        lines.append(f'[channels.sms]\nprovider = "tencent"\nendpoint = "{fakes["sms"].url}"\n'
                     f'sign_name = "长治市人民政府"\ntemplate_code = "100001"\nsecret_id = "{TC_ID}"\n'
                     f'secret_key = "{TC_KEY}"\nsdk_app_id = "{TC_APP}"\nreceipt_token = "{RECEIPT_TOKEN}"\n'
                     'verification_template_code = "100002"\nrate_per_second = 1000\n')
    elif "sms" in fakes:
        # Aliyun allows 5,000 SendSms requests a second; 1,000 is a conservative production account.
        lines.append(f'[channels.sms]\nprovider = "aliyun"\nendpoint = "{fakes["sms"].url}"\n'
                     f'sign_name = "长治市人民政府"\ntemplate_code = "SMS_000001"\naccess_key_id = "{AK}"\n'
                     f'access_key_secret = "{SK}"\nreceipt_token = "{RECEIPT_TOKEN}"\n'
                     'verification_template_code = "SMS_000002"\nrate_per_second = 1000\n')
    if "wechat" in fakes:
        lines.append(f'[channels.wechat]\nendpoint = "{fakes["wechat"].url}"\napp_id = "{WX_APP}"\n'
                     f'app_secret = "{WX_SECRET}"\ntoken = "{WX_TOKEN}"\ntemplate_id = "bench-template"\n'
                     f"rate_per_second = {wechat_rate}\n")
    return "\n".join(lines)


@contextlib.asynccontextmanager
async def database(backend: str, folder: Path) -> AsyncIterator[str]:
    """A database URL for one case: a SQLite file in `folder`, or a fresh PostgreSQL database, dropped after."""
    if backend == "sqlite":
        yield f"sqlite:///{folder / 'bench.db'}"
        return
    name = f"notifier_bench_{uuid.uuid4().hex[:12]}"
    conn = await asyncpg.connect(PG_MAINTENANCE, timeout=5)
    try:
        await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()
    try:
        yield PG_MAINTENANCE.rsplit("/", 1)[0] + f"/{name}"
    finally:
        conn = await asyncpg.connect(PG_MAINTENANCE, timeout=5)
        try:
            await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        finally:
            await conn.close()


async def wal_position() -> int:
    """Bytes of WAL the PostgreSQL server has written so far (its current LSN)."""
    conn = await asyncpg.connect(PG_MAINTENANCE, timeout=5)
    try:
        return int(await conn.fetchval("SELECT pg_wal_lsn_diff(pg_current_wal_lsn(), '0/0')"))
    finally:
        await conn.close()


def pg_reachable() -> str | None:
    """None when the benchmark's PostgreSQL answers, else why not."""
    async def probe() -> None:
        conn = await asyncpg.connect(PG_MAINTENANCE, timeout=3)
        await conn.close()

    try:
        asyncio.run(probe())
    except Exception as exc:
        return f"{type(exc).__name__}: {exc}"
    return None


def mix(count: int, shares: dict[str, float]) -> dict[str, int]:
    """How many of `count` subscribers get each channel (the last takes the rounding)."""
    kinds = list(shares)
    sizes = {kind: int(count * shares[kind]) for kind in kinds[:-1]}
    sizes[kinds[-1]] = count - sum(sizes.values())
    return sizes


def _address(kind: str, i: int, fakes: dict[str, Child]) -> str:
    if kind == "webhook":
        return f"{fakes['webhook'].url}/org/{i}"
    if kind == "sms":
        return f"+86138{i:08d}"
    return f"o{i:027d}"  # a WeChat openid's length


def _records(kind: str, start: int, stop: int, topic: str, url_of: dict[str, Child],
             ) -> Iterator[tuple[SubscriberRecord, dict[str, str]]]:
    now = time.time()
    for i in range(start, stop):
        yield (SubscriberRecord(
            id=uuid.uuid4().hex, region="140402", locale="zh-CN", quiet_start=None, quiet_end=None, status="active",
            consent_source="bench", consent_at=now, created_at=now, contacts={kind: _address(kind, i, url_of)},
            subscriptions=[(topic, [kind], 0)]),
            {"webhook": generate_webhook_secret()} if kind == "webhook" else {})


async def populate(settings: Settings, sizes: dict[str, int], fakes: dict[str, Child], probes: bool) -> str:
    """Subscribers of the case (one channel each, the topic of the fan-out) and, with `probes`, one webhook
    subscriber of the probe topic on the probe receiver — and, where a fallback receiver runs, one a region of the
    fallback topic by SMS (`fallback_number`) then a webhook on it; returns an admin key for the API. The database
    is the case's, already migrated by the case's own notifier: not migrated again here."""
    store = await open_database(settings, upgrade=False)
    try:
        await seed_catalogue(store, city_catalogue(settings))
        offset = 0
        for kind, size in sizes.items():
            for start_at in range(0, size, INSERT_CHUNK):
                rows = list(_records(kind, offset + start_at, offset + min(size, start_at + INSERT_CHUNK), TOPIC,
                                     fakes))
                await store.bulk_create_subscribers([r for r, _ in rows], [s for _, s in rows])
            offset += size
        if probes:
            probe_url = {"webhook": fakes["probe"]}
            rows = list(_records("webhook", 0, 1, PROBE_TOPIC, probe_url))
            await store.bulk_create_subscribers([r for r, _ in rows], [s for _, s in rows])
        if probes and "fallback" in fakes:
            rows = list(_records("webhook", 0, len(FALLBACK_REGIONS), FALLBACK_TOPIC, {"webhook": fakes["fallback"]}))
            await store.bulk_create_subscribers([replace(
                person, region=region, contacts={"sms": fallback_number(n), **person.contacts},
                subscriptions=[(FALLBACK_TOPIC, ["sms", "webhook"], 0)])
                for n, ((person, _), region) in enumerate(zip(rows, FALLBACK_REGIONS, strict=True))],
                [secrets for _, secrets in rows])
        _, raw = await create_key(store, Role.ADMIN, label="bench")
        return raw
    finally:
        await store.close()


def load(config: Path) -> Settings:
    return load_settings(config, {})
