"""What the citizen browser tests share: the real app served on a loopback port with `server.public_url` set to
it, the Aliyun SMS fake (its receipts pushed back to the app) and the fake SMTP server; a citizen signing up in
the browser the way a person does; the links of the messages they receive; and the byte scan of the SQLite files.
"""

from __future__ import annotations

import re
import socket
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from email.message import EmailMessage
from typing import Any

from aiohttp import web

from notifier.fakes.aliyun_sms import RunningAliyunSms, SentRecord, start_aliyun_sms
from notifier.fakes.smtp import RunningSmtp
from notifier.models import AlertIn
from notifier.publish import publish_alert
from notifier.service import Service
from notifier.store.records import SubscriberRecord
from notifier.web import create_app
from tests.conftest import SettingsFactory, settle

ALERT_TEMPLATE = "SMS_100001"
VERIFY_TEMPLATE = "SMS_900001"
RECEIPT_TOKEN = "e2e-receipt-token-0000000001"
TIMEOUT_MS = 10_000
CITY_DISTRICT = "140402"  # 城区


@dataclass
class Town:
    """The served app (`url` is also its public_url), its service, and the fake SMS gateway and mail server."""

    url: str
    service: Service
    sms: RunningAliyunSms
    smtp: RunningSmtp

    def codes_to(self, national: str) -> list[str]:
        """The verification codes the SMS gateway was asked to text to `national`, oldest first."""
        return [r.params["code"] for r in self.sms.sent if r.template_code == VERIFY_TEMPLATE
                and r.numbers == (national,)]

    def alert_sms_to(self, national: str) -> list[SentRecord]:
        return [r for r in self.sms.sent if r.template_code == ALERT_TEMPLATE and national in r.numbers]

    def alert_mail_to(self, address: str) -> list[EmailMessage]:
        """Alert messages (they carry List-Unsubscribe; the confirmation mail does not) to `address`."""
        return [m.message for m in self.smtp.messages_to(address) if m.message["List-Unsubscribe"] is not None]

    async def only_subscriber(self) -> SubscriberRecord:
        records, _ = await self.service.store.list_subscribers(10, None)
        assert len(records) == 1, records
        return records[0]

    async def publish(self, headline: str) -> str:
        """Publish a warning for 城区 to every verified channel, deliver it, await the SMS receipts; its id."""
        alert, _ = await publish_alert(self.service.store, AlertIn(
            topic="env.heavy-pollution", headline=headline, severity="severe", level="orange", policy="all",
            regions=[CITY_DISTRICT], body="预计未来72小时我市城区将出现重度污染天气。",
            instruction="老年人减少户外活动，外出请佩戴口罩。"), None)
        await settle(self.service)
        await self.sms.drain()
        return alert.id


def _free_socket() -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    sock.listen(128)
    sock.setblocking(False)
    return sock


@asynccontextmanager
async def open_town(make_settings: SettingsFactory, smtp: RunningSmtp) -> AsyncIterator[Town]:
    """Serve the app on a port bound first, so that public_url (the base of every link sent) is where it listens."""
    sock = _free_socket()
    base = f"http://127.0.0.1:{sock.getsockname()[1]}"
    sms = await start_aliyun_sms(access_key_id="ak-e2e", access_key_secret="sk-e2e",
                                 receipt_url=f"{base}/v1/receipts/sms/aliyun?token={RECEIPT_TOKEN}")
    service: Service | None = None
    runner: web.AppRunner | None = None
    try:
        settings = make_settings(server={"public_url": base}, channels={
            "sms": {"provider": "aliyun", "endpoint": sms.url, "sign_name": "长治市人民政府",
                    "template_code": ALERT_TEMPLATE, "verification_template_code": VERIFY_TEMPLATE,
                    "receipt_token": RECEIPT_TOKEN, "access_key_id": "ak-e2e", "access_key_secret": "sk-e2e"},
            "email": {"host": smtp.host, "port": smtp.port, "tls": "none",
                      "sender": "长治市政务公开 <notify@changzhi.gov.cn>"}})
        service = Service(settings)
        await service.open()
        runner = web.AppRunner(create_app(settings, service=service))
        await runner.setup()
        await web.SockSite(runner, sock).start()
        yield Town(base, service, sms, smtp)
    finally:
        if runner is not None:
            await runner.cleanup()
        sock.close()
        if service is not None:
            await service.close()
        await sms.stop()


async def heading(page: Any, name: str) -> None:
    """Wait until the page's h1 is `name` (the answer to a navigation)."""
    await page.get_by_role("heading", level=1, name=name, exact=True).wait_for(timeout=TIMEOUT_MS)


async def sign_up(page: Any, town: Town, *, mobile: str, email: str) -> None:
    """Fill /subscribe as a person would (SMS and email), submit, and type the code the SMS gateway was sent."""
    await page.goto(town.url + "/subscribe")
    await heading(page, "订阅公益信息")
    await fill_form(page, mobile=mobile, email=email)
    await page.get_by_role("button", name="提交订阅").click()
    await heading(page, "请确认您的联系方式")
    await enter_code(page, town, mobile)


async def fill_form(page: Any, *, mobile: str, email: str) -> None:
    """Choose the heavy-pollution warnings in 城区 for an elderly resident by SMS and email, and agree."""
    await page.get_by_role("checkbox", name="重污染天气预警", exact=True).check()
    await page.get_by_label("所在区县").select_option(label="城区")
    await page.get_by_role("checkbox", name="老年人", exact=True).check()
    await page.get_by_role("checkbox", name="短信", exact=True).check()
    await page.get_by_role("checkbox", name="电子邮件", exact=True).check()
    await page.get_by_label("手机号码").fill(mobile)
    await page.get_by_label("电子邮箱").fill(email)
    await page.get_by_label("我已阅读并同意上述个人信息处理说明").check()


async def enter_code(page: Any, town: Town, mobile: str) -> None:
    """Type the code the SMS gateway was asked to text to `mobile`, and land on the done page."""
    national = re.sub(r"\D", "", mobile)[-11:]
    [code] = town.codes_to(national)
    assert re.fullmatch(r"\d{6}", code)
    await page.get_by_label("6位验证码").fill(code)
    await page.get_by_role("button", name="确认", exact=True).click()
    await heading(page, "订阅已生效")


async def confirm_email(page: Any, town: Town, address: str) -> None:
    """Open the link of the confirmation mail; opening alone confirms nothing, the button does."""
    [mail] = town.smtp.messages_to(address)
    link = re.search(r"http://\S+/subscribe/confirm/\S+", text_of(mail.message))
    assert link is not None and link.group(0).startswith(town.url + "/")
    await page.goto(link.group(0))
    await heading(page, "确认电子邮箱")
    subscriber = await town.only_subscriber()
    assert (await town.service.store.contact_states(subscriber.id))["email"] is None
    await page.get_by_role("button", name="确认订阅").click()
    await heading(page, "订阅已生效")
    assert (await town.service.store.contact_states(subscriber.id))["email"] is not None


def text_of(mail: EmailMessage) -> str:
    body = mail.get_body(("plain",))
    assert body is not None
    return str(body.get_content())


def link_after(mail: EmailMessage, label: str) -> str:
    """The URL printed after `label` (e.g. "退订：") in the mail's text part."""
    match = re.search(re.escape(label) + r"(http\S+)", text_of(mail))
    assert match is not None, label
    return match.group(1)


