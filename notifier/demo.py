"""`notifier demo`: the whole pipeline on a fresh machine — fake gateways on loopback, the default catalogue,
a few thousand synthetic subscribers, one orange heavy-pollution warning, its coverage — then keep serving."""

from __future__ import annotations

import asyncio
import random
import time
import uuid
from pathlib import Path

from notifier.config import Settings
from notifier.coverage import alert_coverage
from notifier.fakes.smtp import RunningSmtp, start_smtp
from notifier.fakes.webhook_receiver import Reply, RunningReceiver, start_receiver
from notifier.keys import create_key
from notifier.models import AlertIn, Level, MsgType, Policy, Role, Severity, Urgency
from notifier.progress import console, print_coverage, watch_alert
from notifier.publish import publish_alert
from notifier.service import Service
from notifier.store.records import SubscriberRecord
from subscriptions.contacts import generate_webhook_secret

DEMO_DB = Path("notifier-demo.db")
TARGET_REGIONS = ["140402", "140411", "140481"]  # 城区, 郊区, 潞城市
GROUPS = ["elderly", "child", "student", "disabled", "low_income", "military"]
SEED = 20261127


def _demo_settings(settings: Settings, smtp: RunningSmtp, explicit_config: bool) -> Settings:
    channels = dict(settings.channels)
    channels["webhook"] = {**channels.get("webhook", {}), "allow_private_networks": True}
    channels["email"] = {"host": smtp.host, "port": smtp.port, "tls": "none",
                         "sender": "长治市政务公开 <notify@demo.changzhi.gov.cn>"}
    update: dict[str, object] = {"channels": channels}
    if not explicit_config:
        for suffix in ("", "-wal", "-shm"):
            Path(f"{DEMO_DB}{suffix}").unlink(missing_ok=True)
        update["database"] = settings.database.model_copy(update={"url": f"sqlite:///{DEMO_DB}"})
    return settings.model_copy(update=update)


def synthetic_subscribers(count: int, webhook_base: str, rng: random.Random,
                          regions: list[str]) -> tuple[list[SubscriberRecord], list[dict[str, str]]]:
    """Residents and organisations spread over regions, groups, locales and channels."""
    records, secrets = [], []
    now = time.time()
    for i in range(count):
        roll = rng.random()
        contacts: dict[str, str] = {}
        if roll < 0.80:
            contacts["email"] = f"resident{i:05d}@example.org"
        if roll >= 0.45:
            contacts["webhook"] = f"{webhook_base}/org/{i:05d}"
        channels: list[str] = [k for k in ("email", "webhook") if k in contacts]
        groups = sorted({g for g in GROUPS if rng.random() < (0.35 if g == "elderly" else 0.08)})
        records.append(SubscriberRecord(
            id=uuid.uuid4().hex, region=rng.choice(regions), locale="en" if rng.random() < 0.15 else "zh-CN",
            quiet_start=None, quiet_end=None, status="active", consent_source="demo", consent_at=now,
            created_at=now, groups=groups, contacts=contacts,
            subscriptions=[("env.heavy-pollution", channels, 0), ("env.air-forecast", channels, 0)]))
        secrets.append({"webhook": generate_webhook_secret()} if "webhook" in contacts else {})
    return records, secrets


def script_failures(records: list[SubscriberRecord], smtp: RunningSmtp, receiver: RunningReceiver,
                    rng: random.Random) -> None:
    """Realistic trouble: dead mailboxes, greylisting, flaky and retired endpoints."""
    for r in records:
        if email := r.contacts.get("email"):
            roll = rng.random()
            if roll < 0.04:
                smtp.script(email, [550], then=550)  # mailbox does not exist: permanent, falls back
            elif roll < 0.08:
                smtp.script(email, [451])  # greylisted once: retried
        if url := r.contacts.get("webhook"):
            path = url.removeprefix(receiver.url)
            roll = rng.random()
            if roll < 0.05:
                receiver.script(path, [503, 503])  # flaky: two retries
            elif roll < 0.06:
                receiver.script(path, [Reply(status=410)])  # endpoint retired: disabled


DEMO_ALERT = AlertIn(
    topic="env.heavy-pollution", msg_type=MsgType.ALERT, severity=Severity.SEVERE, urgency=Urgency.EXPECTED,
    level=Level.ORANGE, regions=TARGET_REGIONS, groups=["elderly"], policy=Policy.FALLBACK, fallback_after=300,
    headline="长治市重污染天气橙色预警", idempotency_key=None,
    body="受不利气象条件影响，预计未来72小时我市城区、郊区、潞城市将出现重度污染天气。",
    instruction="老年人、儿童及呼吸道、心脑血管疾病患者减少户外活动；外出请佩戴口罩。",
    data={"aqi_forecast": "200-300", "duration_hours": 72},
)


async def run_demo(settings: Settings, *, once: bool, subscribers: int, explicit_config: bool) -> int:
    rng = random.Random(SEED)  # noqa: S311 - reproducible synthetic demo data, nothing secret
    smtp = await start_smtp()
    receiver = await start_receiver(keep_bodies=False)
    try:
        demo_settings = _demo_settings(settings, smtp, explicit_config)
        async with Service(demo_settings.model_copy(
                update={"worker": demo_settings.worker.model_copy(update={"enabled": False})})) as service:
            regions = [r.code for r in service.catalogue.regions]
            records, secrets = synthetic_subscribers(subscribers, receiver.url, rng, regions)
            await service.store.bulk_create_subscribers(records, secrets)
            script_failures(records, smtp, receiver, rng)
            console.print(f"[bold]notifier demo[/bold]: {len(regions)} regions, {len(service.catalogue.topics)} "
                          f"topics, {len(records)} subscribers; fake SMTP on {smtp.host}:{smtp.port}, "
                          f"fake webhook receiver on {receiver.url}")
            alert, _ = await publish_alert(service.store, DEMO_ALERT, None)
            console.print(f"published {alert.id}: 重污染天气橙色预警 to 城区, 郊区, 潞城市 × elderly — "
                          f"{alert.targeted} targeted")
            await watch_alert(service, alert.id)
            names = {r.code: r.name for r in service.catalogue.regions}
            print_coverage(await alert_coverage(service.store, alert.id), names)
            if once:
                return 0
            return await _serve(demo_settings, service)
    finally:
        await receiver.stop()
        await smtp.stop()


async def _serve(settings: Settings, service: Service) -> int:
    from aiohttp import web

    from notifier.commands import wait_for_signal
    from notifier.web.app import create_app

    _, admin_key = await create_key(service.store, Role.ADMIN, label="demo")
    runner = web.AppRunner(create_app(settings, service=service), access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, settings.server.host, settings.server.port)
    try:
        await site.start()
    except OSError:
        site = web.TCPSite(runner, settings.server.host, 0)  # the usual port is taken: any free one will do
        await site.start()
    address = site.name
    service.start_worker()
    console.print(f"serving the API on {address} (docs: {address}/docs)")
    console.print(f"admin key (shown once): {admin_key}")
    console.print("press Ctrl+C to stop")
    try:
        await wait_for_signal()
    finally:
        await runner.cleanup()
    await asyncio.sleep(0)
    return 0
