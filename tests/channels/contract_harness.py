"""Plumbing of the channel contract suite (tests/channels/test_contract.py): one `ChannelUnderTest` per channel
(webhook, email, SMS on Aliyun and Tencent, WeChat, voice on Aliyun and Tencent), each driving its bundled fake
gateway on loopback through the same small interface, and a `Rig` that wires one of them to a real Service and a
real web app for receipts.

Every harness scripts its fake the same way — "the next attempt for recipient i fails transiently / permanently",
"recipient i's receipt says undelivered / comes late" — and reads back what the fake itself observed (accepted
messages, provider requests and their receive times), so the contract tests never look inside the adapters.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, ClassVar

from aiohttp.test_utils import TestServer

from notifier.config import Settings
from notifier.coverage import alert_coverage
from notifier.fakes.aliyun_sms import RunningAliyunSms, start_aliyun_sms
from notifier.fakes.aliyun_voice import start_aliyun_voice
from notifier.fakes.smtp import RunningSmtp, start_smtp
from notifier.fakes.tencent_sms import RunningTencentSms, start_tencent_sms
from notifier.fakes.tencent_voice import start_tencent_voice
from notifier.fakes.voice_calls import CallBook
from notifier.fakes.webhook_receiver import Reply, RunningReceiver, start_receiver
from notifier.fakes.wechat import RunningWechat, start_wechat
from notifier.models import AlertIn, Coverage
from notifier.publish import publish_alert
from notifier.service import Service
from notifier.store.records import DeliveryRow
from notifier.subscribers import create_subscriber
from notifier.web import create_app
from subscriptions.models import SubscriberIn
from tests.conftest import settle

TOPIC = "env.heavy-pollution"
RECEIPT_TOKEN = "contract-receipt-token-0001"  # ≥ 16 characters, as the SMS config models demand
LATE_RECEIPT = 1.0  # seconds before a "late" receipt: long enough to observe the `sent` state after settle()


class ChannelUnderTest:
    """One channel kind and its fake gateway, behind the interface every contract case uses."""

    name: ClassVar[str]  # the test id: webhook, email, sms-aliyun, sms-tencent, wechat
    kind: ClassVar[str]  # the channel kind in settings and deliveries
    confirms_by_receipt: ClassVar[bool]  # acceptance is not delivery: a receipt decides
    per_recipient_requests: ClassVar[bool]  # one provider request per recipient (webhook, WeChat)
    fallback_name: ClassVar[str] = "webhook"  # the channel a subscriber falls back to in the fallback case

    async def start(self) -> None:
        raise NotImplementedError

    async def stop(self) -> None:
        raise NotImplementedError

    def section(self, **limits: Any) -> dict[str, Any]:
        """`[channels.<kind>]` pointing at the fake, with `limits` (rate_per_second, max_batch) on top."""
        raise NotImplementedError

    def rate_limits(self, rate: float) -> dict[str, Any]:
        """The section's limits for the rate-limit case: `rate` provider requests per second."""
        return {"rate_per_second": rate}

    def point_receipts_at(self, base_url: str) -> None:
        """Make the fake push its receipts to our app at `base_url` (no-op for channels without receipts)."""

    def contact(self, i: int) -> str:
        """Recipient i's address on this channel (synthetic: never logged by the suite)."""
        raise NotImplementedError

    def fail_transiently_once(self, i: int) -> None:
        """Recipient i's next attempt fails with an error worth retrying at once (no long Retry-After)."""
        raise NotImplementedError

    def fail_permanently_once(self, i: int) -> None:
        """Recipient i's next attempt is refused for good; a retry, if one came, would be accepted."""
        raise NotImplementedError

    def fail_by_receipt(self, i: int) -> None:
        """Recipient i's message is accepted, then its receipt says it did not arrive.

        Channels without receipts (webhook, email) have no such answer; their documented equivalent — the only
        failure signal they get — is a refusal at send time, so they fail permanently instead."""
        self.fail_permanently_once(i)

    def delay_receipt(self, i: int) -> None:
        """Recipient i's receipt arrives `LATE_RECEIPT` seconds after the acceptance (no-op without receipts)."""

    def messages_seen(self) -> int:
        """Messages (one per recipient) the fake accepted."""
        raise NotImplementedError

    def requests_seen(self) -> int:
        """Provider requests the fake accepted: SendSms calls, SMTP sessions, HTTP POSTs per recipient."""
        raise NotImplementedError

    def request_times(self) -> list[float]:
        """When the fake received each accepted request (its own clock), in any order."""
        raise NotImplementedError


class WebhookUnderTest(ChannelUnderTest):
    name = kind = "webhook"
    confirms_by_receipt = False
    per_recipient_requests = True
    fallback_name = "email"

    async def start(self) -> None:
        self.fake: RunningReceiver = await start_receiver()
        self._refusals: dict[str, int] = {}  # path → scripted refusals, answered before any 200

    async def stop(self) -> None:
        await self.fake.stop()

    def section(self, **limits: Any) -> dict[str, Any]:
        return {"allow_private_networks": True, "timeout": 2.0, **limits}

    def contact(self, i: int) -> str:
        return self.fake.url_for(f"/contract/{i}")

    def _refuse_once(self, i: int, reply: Reply) -> None:
        self.fake.script(f"/contract/{i}", [reply])
        self._refusals[f"/contract/{i}"] = 1

    def fail_transiently_once(self, i: int) -> None:
        self._refuse_once(i, Reply(status=503))

    def fail_permanently_once(self, i: int) -> None:
        self._refuse_once(i, Reply(status=400))

    def _accepted(self) -> list[float]:
        # The receiver keeps every request, refused or not; a path's scripted refusals answer its first requests.
        seen: dict[str, int] = {}
        accepted = []
        for request in self.fake.received:
            seen[request.path] = seen.get(request.path, 0) + 1
            if seen[request.path] > self._refusals.get(request.path, 0):
                accepted.append(request.received_at)
        return accepted

    def messages_seen(self) -> int:
        return len(self._accepted())

    def requests_seen(self) -> int:
        return len(self._accepted())

    def request_times(self) -> list[float]:
        return self._accepted()


class EmailUnderTest(ChannelUnderTest):
    name = kind = "email"
    confirms_by_receipt = False
    per_recipient_requests = False  # one SMTP session per batch

    async def start(self) -> None:
        self.fake: RunningSmtp = await start_smtp()

    async def stop(self) -> None:
        await self.fake.stop()

    def section(self, **limits: Any) -> dict[str, Any]:
        return {"host": self.fake.host, "port": self.fake.port, "tls": "none",
                "sender": "长治市政务公开 <notify@changzhi.gov.cn>", "timeout": 5.0, **limits}

    def contact(self, i: int) -> str:
        return f"contract{i:04d}@example.org"

    def fail_transiently_once(self, i: int) -> None:
        self.fake.script(self.contact(i), [451])

    def fail_permanently_once(self, i: int) -> None:
        self.fake.script(self.contact(i), [550])

    def messages_seen(self) -> int:
        return len(self.fake.messages)

    def requests_seen(self) -> int:
        return self.fake.connections

    def request_times(self) -> list[float]:
        return [m.received_at for m in self.fake.messages]


class AliyunSmsUnderTest(ChannelUnderTest):
    name = "sms-aliyun"
    kind = "sms"
    confirms_by_receipt = True
    per_recipient_requests = False
    KEY, SECRET = "contract-ak", "contract-sk"

    async def start(self) -> None:
        self.fake: RunningAliyunSms = await start_aliyun_sms(
            access_key_id=self.KEY, access_key_secret=self.SECRET, late_receipt_delay=LATE_RECEIPT)

    async def stop(self) -> None:
        await self.fake.stop()

    def section(self, **limits: Any) -> dict[str, Any]:
        return {"provider": "aliyun", "endpoint": self.fake.url, "sign_name": "长治市人民政府",
                "template_code": "SMS_465810001", "receipt_token": RECEIPT_TOKEN, "access_key_id": self.KEY,
                "access_key_secret": self.SECRET, "timeout": 5.0, **limits}

    def rate_limits(self, rate: float) -> dict[str, Any]:
        # The limit counts SendSms requests, not numbers: one number per request makes one request per send.
        return {"rate_per_second": rate, "max_batch": 1}

    def point_receipts_at(self, base_url: str) -> None:
        self.fake.configure(receipt_url=f"{base_url}/v1/receipts/sms/aliyun?token={RECEIPT_TOKEN}")

    def contact(self, i: int) -> str:
        return f"+86139{i:08d}"

    def fail_transiently_once(self, i: int) -> None:
        self.fake.script(self.contact(i), "5xx")

    def fail_permanently_once(self, i: int) -> None:
        self.fake.script(self.contact(i), "permanent")

    def fail_by_receipt(self, i: int) -> None:
        self.fake.script(self.contact(i), "receipt_fail")

    def delay_receipt(self, i: int) -> None:
        self.fake.script(self.contact(i), "late_receipt")

    def messages_seen(self) -> int:
        return sum(len(r.numbers) for r in self.fake.sent)

    def requests_seen(self) -> int:
        return len(self.fake.sent)

    def request_times(self) -> list[float]:
        return [r.sent_at for r in self.fake.sent]


class TencentSmsUnderTest(ChannelUnderTest):
    name = "sms-tencent"
    kind = "sms"
    confirms_by_receipt = True
    per_recipient_requests = False
    SECRET_ID, SECRET_KEY, APP = "AKIDcontract", "contract-secret-key", "1400000001"

    async def start(self) -> None:
        self.fake: RunningTencentSms = await start_tencent_sms(
            secret_id=self.SECRET_ID, secret_key=self.SECRET_KEY, sdk_app_id=self.APP, late_delay=LATE_RECEIPT)

    async def stop(self) -> None:
        await self.fake.stop()

    def section(self, **limits: Any) -> dict[str, Any]:
        return {"provider": "tencent", "endpoint": self.fake.url, "sign_name": "长治市人民政府",
                "template_code": "1234567", "receipt_token": RECEIPT_TOKEN, "secret_id": self.SECRET_ID,
                "secret_key": self.SECRET_KEY, "sdk_app_id": self.APP, "timeout": 5.0, **limits}

    def rate_limits(self, rate: float) -> dict[str, Any]:
        # The limit counts SendSms requests, not numbers: one number per request makes one request per send.
        return {"rate_per_second": rate, "max_batch": 1}

    def point_receipts_at(self, base_url: str) -> None:
        self.fake.state.receipt_url = f"{base_url}/v1/receipts/sms/tencent?token={RECEIPT_TOKEN}"

    def contact(self, i: int) -> str:
        return f"+86137{i:08d}"

    def fail_transiently_once(self, i: int) -> None:
        self.fake.script(self.contact(i), "5xx")

    def fail_permanently_once(self, i: int) -> None:
        self.fake.script(self.contact(i), "permanent")

    def fail_by_receipt(self, i: int) -> None:
        self.fake.script(self.contact(i), "receipt_fail")

    def delay_receipt(self, i: int) -> None:
        self.fake.script(self.contact(i), "late_receipt")

    def _requests(self) -> dict[str, list[float]]:
        by_request: dict[str, list[float]] = {}
        for sms in self.fake.sent:
            by_request.setdefault(sms.request_id, []).append(sms.sent_at)
        return by_request

    def messages_seen(self) -> int:
        return len(self.fake.sent)

    def requests_seen(self) -> int:
        return len(self._requests())

    def request_times(self) -> list[float]:
        return [min(times) for times in self._requests().values()]


class WechatUnderTest(ChannelUnderTest):
    name = kind = "wechat"
    confirms_by_receipt = True
    per_recipient_requests = True
    APP, SECRET, TOKEN = "wxcontract0000001", "contract-app-secret", "contract-callback-token"

    async def start(self) -> None:
        self.fake: RunningWechat = await start_wechat(app_id=self.APP, app_secret=self.SECRET, token=self.TOKEN,
                                                      late_receipt_delay=LATE_RECEIPT)

    async def stop(self) -> None:
        await self.fake.stop()

    def section(self, **limits: Any) -> dict[str, Any]:
        return {"endpoint": self.fake.url, "app_id": self.APP, "app_secret": self.SECRET, "token": self.TOKEN,
                "template_id": "CONTRACT_TEMPLATE_1", "timeout": 5.0, **limits}

    def point_receipts_at(self, base_url: str) -> None:
        self.fake.callback_url = f"{base_url}/v1/wechat/callback"

    def contact(self, i: int) -> str:
        return f"oContract{i:019d}"  # 28 characters, like a real openid

    def fail_transiently_once(self, i: int) -> None:
        self.fake.script(self.contact(i), "busy", times=1)  # errcode -1: system busy

    def fail_permanently_once(self, i: int) -> None:
        self.fake.script(self.contact(i), "refused", times=1)  # errcode 43101: the user refused messages

    def fail_by_receipt(self, i: int) -> None:
        self.fake.script(self.contact(i), "receipt_fail", times=1)  # Status "failed:user block"

    def delay_receipt(self, i: int) -> None:
        self.fake.script(self.contact(i), "late_receipt", times=1)

    def messages_seen(self) -> int:
        return len(self.fake.sent)

    def requests_seen(self) -> int:
        return len(self.fake.sent)

    def request_times(self) -> list[float]:
        return [m.at for m in self.fake.sent]


class VoiceUnderTest(ChannelUnderTest):
    """The voice providers share a fake's call book: one call request per recipient, results pushed back."""

    kind = "voice"
    confirms_by_receipt = True
    per_recipient_requests = True
    fake: CallBook

    async def stop(self) -> None:
        await self.fake.stop()

    def point_receipts_at(self, base_url: str) -> None:
        self.fake.receipt_url = f"{base_url}/v1/receipts/voice/{self.name.removeprefix('voice-')}?token={RECEIPT_TOKEN}"

    def fail_transiently_once(self, i: int) -> None:
        self.fake.script(self.contact(i), "5xx")

    def fail_permanently_once(self, i: int) -> None:
        self.fake.script(self.contact(i), "refuse")

    def fail_by_receipt(self, i: int) -> None:
        self.fake.script(self.contact(i), "invalid_number")  # a final result: no second call

    def delay_receipt(self, i: int) -> None:
        self.fake.script(self.contact(i), "late_receipt")

    def messages_seen(self) -> int:
        return len(self.fake.calls)

    def requests_seen(self) -> int:
        return len(self.fake.calls)

    def request_times(self) -> list[float]:
        return [call.at for call in self.fake.calls]


class AliyunVoiceUnderTest(VoiceUnderTest):
    name = "voice-aliyun"
    KEY, SECRET = "contract-voice-ak", "contract-voice-sk"

    async def start(self) -> None:
        self.fake = await start_aliyun_voice(access_key_id=self.KEY, access_key_secret=self.SECRET,
                                             late_delay=LATE_RECEIPT)

    def section(self, **limits: Any) -> dict[str, Any]:
        return {"provider": "aliyun", "endpoint": self.fake.url, "tts_code": "TTS_100001",
                "called_show_number": "03552000000", "receipt_token": RECEIPT_TOKEN, "access_key_id": self.KEY,
                "access_key_secret": self.SECRET, "timeout": 5.0, **limits}

    def contact(self, i: int) -> str:
        return f"+863552{i:06d}"  # fixed lines in Changzhi (0355): Aliyun calls landlines


class TencentVoiceUnderTest(VoiceUnderTest):
    name = "voice-tencent"
    SECRET_ID, SECRET_KEY, APP = "AKIDcontractvoice", "contract-voice-secret-key", "1400000002"

    async def start(self) -> None:
        self.fake = await start_tencent_voice(secret_id=self.SECRET_ID, secret_key=self.SECRET_KEY,
                                              sdk_app_id=self.APP, late_delay=LATE_RECEIPT)

    def section(self, **limits: Any) -> dict[str, Any]:
        return {"provider": "tencent", "endpoint": self.fake.url, "template_id": "1234567",
                "receipt_token": RECEIPT_TOKEN, "secret_id": self.SECRET_ID, "secret_key": self.SECRET_KEY,
                "sdk_app_id": self.APP, "timeout": 5.0, **limits}

    def contact(self, i: int) -> str:
        return f"+86136{i:08d}"  # Tencent VMS calls mobiles only


CHANNELS: dict[str, type[ChannelUnderTest]] = {
    cls.name: cls for cls in (WebhookUnderTest, EmailUnderTest, AliyunSmsUnderTest, TencentSmsUnderTest,
                              WechatUnderTest, AliyunVoiceUnderTest, TencentVoiceUnderTest)}


@dataclass
class Rig:
    """A Service configured with the channel under test (and its fallback channel), serving receipts on loopback."""

    channel: ChannelUnderTest
    fallback: ChannelUnderTest
    service: Service
    server: TestServer

    async def subscribe(self, i: int, *, with_fallback: bool = False) -> None:
        """Subscriber i on the channel under test (then, with `with_fallback`, on the fallback channel)."""
        contacts = {self.channel.kind: self.channel.contact(i)}
        channels = [self.channel.kind]
        if with_fallback:
            contacts[self.fallback.kind] = self.fallback.contact(i)
            channels.append(self.fallback.kind)
        body = SubscriberIn.model_validate({"contacts": contacts, "region": "140402", "subscriptions": [
            {"topic": TOPIC, "channels": channels}]})
        await create_subscriber(self.service.store, body, allow_private_webhooks=True)

    async def publish(self, **fields: Any) -> str:
        """Publish an alert on the topic everyone subscribed to; its id."""
        body = {"topic": TOPIC, "headline": "重污染天气黄色预警", "severity": "moderate", **fields}
        alert, _ = await publish_alert(self.service.store, AlertIn.model_validate(body), None)
        return alert.id

    async def settle(self) -> None:
        await settle(self.service)

    async def deliveries(self, alert_id: str, channel: str | None = None) -> list[DeliveryRow]:
        rows, _ = await self.service.store.list_deliveries(alert_id, 1000, None, channel=channel)
        return rows

    async def coverage(self, alert_id: str) -> Coverage:
        return await alert_coverage(self.service.store, alert_id)

    async def until(self, condition: Callable[[], Awaitable[bool]], timeout: float = 10.0) -> None:
        """Dispatch and wait until `condition` holds (receipts arrive, fallbacks are queued and sent)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            await self.settle()
            if await condition():
                return
            await asyncio.sleep(0.02)
        raise AssertionError(f"condition not met within {timeout} s")

    async def until_finished(self, alert_id: str, channel: str | None = None) -> list[DeliveryRow]:
        """Wait until no delivery of the alert is queued or awaiting its receipt; the deliveries."""
        async def finished() -> bool:
            rows = await self.deliveries(alert_id, channel)
            return bool(rows) and all(r.status not in ("queued", "sending", "sent") for r in rows)

        await self.until(finished)
        return await self.deliveries(alert_id, channel)


SettingsMaker = Callable[..., Settings]


async def open_rig(channel: ChannelUnderTest, make_settings: SettingsMaker, **limits: Any) -> Rig:
    """Start the fakes, open a Service on them and serve the web app for receipts; `close_rig` undoes it."""
    fallback = CHANNELS[channel.fallback_name]()
    await channel.start()
    await fallback.start()
    settings = make_settings(channels={channel.kind: channel.section(**limits), fallback.kind: fallback.section()})
    service = Service(settings)
    await service.open()
    server = TestServer(create_app(settings, service=service), host="127.0.0.1")
    await server.start_server()
    channel.point_receipts_at(str(server.make_url("")).rstrip("/"))
    return Rig(channel, fallback, service, server)


async def close_rig(rig: Rig) -> None:
    # Fakes first: their pending receipt pushes are cancelled before the server they push to goes away.
    await rig.channel.stop()
    await rig.fallback.stop()
    await rig.server.close()
    await rig.service.close()
