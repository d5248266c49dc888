"""`notifier demo`: the whole pipeline on a fresh machine — fake gateways on loopback (Aliyun SMS, WeChat, SMTP,
webhook receiver, Aliyun voice), the default catalogue, a few thousand synthetic subscribers (elderly residents
with a voice call as their last channel) and grid workers with elderly people to tell (`notifier.demo_reach`), one
orange heavy-pollution warning, its receipts, fallbacks and confirmations, its coverage — then keep serving the
API."""

from __future__ import annotations

import asyncio
import random
import shutil
import time
import uuid
from contextlib import AsyncExitStack
from pathlib import Path

from aiohttp import web
from rich.markup import escape

from notifier.causes import alert_causes
from notifier.config import Settings
from notifier.coverage import alert_coverage
from notifier.demo_reach import (
    ReachGateways,
    confirm_as_grid_workers,
    elderly_summary,
    grid_workers,
    script_calls,
    webhook_secrets,
    with_voice,
)
from notifier.fakes.aliyun_sms import RunningAliyunSms, start_aliyun_sms
from notifier.fakes.smtp import RunningSmtp, start_smtp
from notifier.fakes.webhook_receiver import Reply, RunningReceiver, start_receiver
from notifier.fakes.wechat import RunningWechat, start_wechat
from notifier.i18n import N_, Words
from notifier.keys import create_key
from notifier.models import AlertIn, Level, MsgType, Policy, Role, Severity, Urgency
from notifier.progress import console, print_coverage, watch_alert
from notifier.publish import publish_alert
from notifier.service import Service
from notifier.stopping import wait_for_signal
from notifier.store.queued_signs import SUFFIX as QUEUED_SIGNS
from notifier.store.records import AlertRow, SubscriberRecord
from notifier.terms import Terms
from subscriptions.contacts import generate_webhook_secret

DEMO_DB = Path("notifier-demo.db")
TARGET_REGIONS = ["140402", "140411", "140481"]  # 城区, 郊区, 潞城市
GROUPS = ["elderly", "child", "student", "disabled", "low_income", "military"]
SEED = 20261127
FALLBACK_AFTER = 4  # seconds without a receipt before the next channel (short, so the demo shows it)
# Credentials of the bundled fakes only: they protect nothing but make the wire protocol real.
SMS_KEY, SMS_SECRET, RECEIPT_TOKEN = "demo-access-key", "demo-access-secret", "demo-receipt-token-0001"
WX_APP, WX_SECRET, WX_TOKEN = "wxdemo000000000001", "demo-app-secret", "demo-callback-token"
# The demo's narration: msgids of the one catalogue (notifier.i18n), said in the command line's language.
STARTED = N_("%(regions)s districts, %(topics)s topics, %(subscribers)s subscribers, %(workers)s grid workers; fake "
             "Aliyun SMS and voice, WeChat, SMTP and webhook gateways on loopback")
PUBLISHED = N_("published %(id)s: %(headline)s to %(regions)s × %(groups)s — %(targeted)s targeted")
SERVING = N_("serving the API on %(base)s (docs: %(base)s/docs, dashboard: %(base)s/admin); delivering what is "
             "published")
ADMIN_KEY = N_("admin key (shown once): %(key)s")
TRY_IT = N_("publish through the API as README.md shows ('Try it against the demo'); press Ctrl+C to stop")


class DemoGateways:
    """The four fake providers, started together and stopped together."""

    smtp: RunningSmtp
    receiver: RunningReceiver
    sms: RunningAliyunSms
    wechat: RunningWechat

    async def start(self, stack: AsyncExitStack) -> None:
        self.smtp = await start_smtp()
        stack.push_async_callback(self.smtp.stop)
        self.receiver = await start_receiver(keep_bodies=False)
        stack.push_async_callback(self.receiver.stop)
        self.sms = await start_aliyun_sms(access_key_id=SMS_KEY, access_key_secret=SMS_SECRET, receipt_delay=0.5)
        stack.push_async_callback(self.sms.stop)
        self.wechat = await start_wechat(app_id=WX_APP, app_secret=WX_SECRET, token=WX_TOKEN, receipt_delay=0.5)
        stack.push_async_callback(self.wechat.stop)

    def point_callbacks_at(self, base: str) -> None:
        self.sms.gateway.receipt_url = f"{base}/v1/receipts/sms/aliyun?token={RECEIPT_TOKEN}"
        self.wechat.callback_url = f"{base}/v1/wechat/callback"


def _demo_settings(settings: Settings, gw: DemoGateways, reach: ReachGateways, explicit_config: bool) -> Settings:
    channels = dict(settings.channels)
    channels["webhook"] = {**channels.get("webhook", {}), "allow_private_networks": True}
    channels["email"] = {"host": gw.smtp.host, "port": gw.smtp.port, "tls": "none",
                         "sender": "长治市政务公开 <notify@demo.changzhi.gov.cn>"}
    channels["sms"] = {"provider": "aliyun", "endpoint": gw.sms.url, "sign_name": "长治市人民政府",
                       "template_code": "SMS_465810001", "verification_template_code": "SMS_465810009",
                       "receipt_token": RECEIPT_TOKEN,
                       "access_key_id": SMS_KEY, "access_key_secret": SMS_SECRET}
    channels["wechat"] = {"endpoint": gw.wechat.url, "app_id": WX_APP, "app_secret": WX_SECRET, "token": WX_TOKEN,
                          "template_id": "DEMO_TEMPLATE_1"}
    channels["voice"] = reach.voice_section()
    # The worker is on: after the scripted warning, the demo keeps delivering whatever is published through the
    # API for as long as it serves (the scripted part is driven by `watch_alert` before the worker starts).
    update: dict[str, object] = {"channels": channels,
                                 "worker": settings.worker.model_copy(update={"enabled": True})}
    if not explicit_config:
        for suffix in ("", "-wal", "-shm", "-urgent"):
            Path(f"{DEMO_DB}{suffix}").unlink(missing_ok=True)
        shutil.rmtree(f"{DEMO_DB}{QUEUED_SIGNS}", ignore_errors=True)  # an earlier demo's FIFOs
        update["database"] = settings.database.model_copy(update={"url": f"sqlite:///{DEMO_DB}"})
    return settings.model_copy(update=update)


def _contacts(i: int, rng: random.Random, webhook_base: str) -> tuple[dict[str, str], list[str]]:
    """A resident reachable on WeChat and SMS, or by email and SMS; or an organisation with a webhook."""
    phone = f"+86138{i:08d}"
    roll = rng.random()
    if roll < 0.45:
        return {"wechat": f"oDemo{i:019d}xyz", "sms": phone}, ["wechat", "sms"]
    if roll < 0.65:
        return {"sms": phone}, ["sms"]
    if roll < 0.85:
        return {"email": f"resident{i:05d}@example.org", "sms": phone}, ["email", "sms"]
    return {"webhook": f"{webhook_base}/org/{i:05d}"}, ["webhook"]


def synthetic_subscribers(count: int, webhook_base: str, rng: random.Random,
                          regions: list[str]) -> tuple[list[SubscriberRecord], list[dict[str, str]]]:
    """Residents and organisations spread over regions, groups, locales and channels."""
    records, secrets = [], []
    now = time.time()
    for i in range(count):
        contacts, channels = _contacts(i, rng, webhook_base)
        groups = sorted({g for g in GROUPS if rng.random() < (0.35 if g == "elderly" else 0.08)})
        records.append(SubscriberRecord(
            id=uuid.uuid4().hex, region=rng.choice(regions), locale="en" if rng.random() < 0.15 else "zh-CN",
            quiet_start=None, quiet_end=None, status="active", consent_source="demo", consent_at=now,
            created_at=now, groups=groups, contacts=contacts,
            subscriptions=[("env.heavy-pollution", channels, 0), ("env.air-forecast", channels, 0)]))
        secrets.append({"webhook": generate_webhook_secret()} if "webhook" in contacts else {})
    return records, secrets


def script_failures(records: list[SubscriberRecord], gw: DemoGateways, rng: random.Random) -> None:
    """Realistic trouble on every channel: unfollowed accounts, blocked messages, dead handsets, lost reports,
    dead mailboxes, greylisting, flaky and retired endpoints."""
    for r in records:
        roll = rng.random()
        if openid := r.contacts.get("wechat"):
            if roll < 0.06:
                gw.wechat.script(openid, "not_following")  # 43004: falls back to SMS at once
            elif roll < 0.10:
                gw.wechat.script(openid, "receipt_fail")  # blocked: the failure receipt falls back
            elif roll < 0.13:
                gw.wechat.script(openid, "no_receipt")  # silence: the fallback window falls back
        if phone := r.contacts.get("sms"):
            if rng.random() < 0.05:
                gw.sms.script(phone, "receipt_fail")  # handset off for days: the carrier reports failure
        if email := r.contacts.get("email"):
            if roll < 0.04:
                gw.smtp.script(email, [550], then=550)  # no such mailbox: falls back to SMS
            elif roll < 0.08:
                gw.smtp.script(email, [451])  # greylisted once: retried
        if url := r.contacts.get("webhook"):
            path = url.removeprefix(gw.receiver.url)
            if roll < 0.05:
                gw.receiver.script(path, [503, 503])  # flaky: two retries
            elif roll < 0.06:
                gw.receiver.script(path, [Reply(status=410)])  # endpoint retired: disabled


DEMO_ALERT = AlertIn(
    topic="env.heavy-pollution", msg_type=MsgType.ALERT, severity=Severity.SEVERE, urgency=Urgency.EXPECTED,
    level=Level.ORANGE, regions=TARGET_REGIONS, groups=["elderly"], policy=Policy.FALLBACK,
    fallback_after=FALLBACK_AFTER, headline="长治市重污染天气橙色预警",
    body="受不利气象条件影响，预计未来72小时我市城区、郊区、潞城市将出现重度污染天气。",
    instruction="老年人、儿童及呼吸道、心脑血管疾病患者减少户外活动；外出请佩戴口罩。",
    data={"aqi": "200-300", "primary_pollutant": "PM2.5"},
)


async def _start_api(settings: Settings, service: Service, port: int) -> tuple[web.AppRunner, str]:
    from notifier.web.app import create_app

    runner = web.AppRunner(create_app(settings, service=service), access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, settings.server.host, port)
    try:
        await site.start()
    except OSError:
        site = web.TCPSite(runner, settings.server.host, 0)  # the usual port is taken: any free one will do
        await site.start()
    bound = runner.addresses[0][1]  # the port actually bound, when 0 (any free one) was asked for
    return runner, f"http://{settings.server.host}:{bound}"


def _published(words: Words, service: Service, alert: AlertRow) -> str:
    """What the demo published, named in the reader's language."""
    terms, en = Terms(words.lang), words.lang == "en"
    regions = {r.code: (r.name_en or r.name) if en else r.name for r in service.catalogue.regions}
    groups = {g.code: (g.name_en or g.name) if en else g.name for g in service.catalogue.groups}
    return words(PUBLISHED, id=alert.id, headline=DEMO_ALERT.headline, targeted=alert.targeted,
                 regions=terms.places(regions.get(c, c) for c in DEMO_ALERT.regions),
                 groups=terms.people(groups.get(c, c) for c in DEMO_ALERT.groups))


async def run_demo(settings: Settings, words: Words, *, once: bool, subscribers: int, explicit_config: bool) -> int:
    rng = random.Random(SEED)  # noqa: S311 - reproducible synthetic demo data, nothing secret
    gw, reach = DemoGateways(), ReachGateways()
    async with AsyncExitStack() as stack:
        await gw.start(stack)
        await reach.start(stack)
        demo_settings = _demo_settings(settings, gw, reach, explicit_config)
        service = Service(demo_settings)
        await service.open()
        stack.push_async_callback(service.close)
        runner, base = await _start_api(demo_settings, service, 0 if once else settings.server.port)
        stack.push_async_callback(runner.cleanup)
        gw.point_callbacks_at(base)
        reach.point_callbacks_at(base)
        regions = [r.code for r in service.catalogue.regions]
        records, secrets = synthetic_subscribers(subscribers, gw.receiver.url, rng, regions)
        script_failures(records, gw, rng)
        reach_rng = random.Random(SEED + 1)  # noqa: S311 - its own stream: the residents' scripts stay as they were
        records = with_voice(records, reach_rng)
        workers = grid_workers(reach.grid.url, TARGET_REGIONS, reach_rng)
        await service.store.bulk_create_subscribers(records + workers, secrets + webhook_secrets(workers))
        script_calls(records, reach.voice, reach_rng)
        started = words(STARTED, regions=len(regions), topics=len(service.catalogue.topics), subscribers=len(records),
                        workers=len(workers))
        console.print(f"[bold]notifier demo[/bold]: {escape(started)}")
        alert, _ = await publish_alert(service.store, DEMO_ALERT, None)
        console.print(escape(_published(words, service, alert)))
        stop_confirming = asyncio.Event()
        confirming = asyncio.create_task(confirm_as_grid_workers(reach.grid, base, reach_rng, stop_confirming))
        await watch_alert(service, alert.id, words, receipt_wait=FALLBACK_AFTER + 4)
        stop_confirming.set()
        await confirming
        names = {r.code: (r.name_en or r.name) if words.lang == "en" else r.name for r in service.catalogue.regions}
        print_coverage(await alert_coverage(service.store, alert.id), words, names,
                       await alert_causes(service.store, alert.id))
        console.print(escape(await elderly_summary(service.store, alert.id, words)))
        if once:
            return 0
        _, admin_key = await create_key(service.store, Role.ADMIN, label="demo")
        service.start_worker()  # from now on, whatever is published through the API goes out, receipts come back
        console.print(escape(words(SERVING, base=base)))
        console.print(escape(words(ADMIN_KEY, key=admin_key)))
        console.print(escape(words(TRY_IT)))
        await wait_for_signal()
    return 0
