"""A citizen in headless Chromium against the real app on loopback, with the Aliyun SMS fake (receipts pushed back)
and the fake SMTP server: subscribe → the code texted by the SMS gateway → verify → an alert arrives →
unsubscribe by the mailed link; and manage → delete, after which a byte scan of the SQLite files finds neither the
number nor the address. Screenshots for review: test-artifacts/citizen-subscribed.png and citizen-deleted.png."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import pytest

from notifier.fakes.smtp import RunningSmtp
from subscriptions.masking import mask_email, mask_mobile
from tests.byte_scan import traces
from tests.conftest import SettingsFactory
from tests.e2e.citizen_support import (
    TIMEOUT_MS,
    Town,
    confirm_email,
    heading,
    link_after,
    open_town,
    sign_up,
)
from tests.e2e.conftest import ARTIFACTS

MOBILE = "13935550123"  # as a person types it
E164 = "+86" + MOBILE
EMAIL = "zhang.min@example.org"
PHONE = {"viewport": {"width": 390, "height": 844}, "device_scale_factor": 2, "is_mobile": True,
         "has_touch": True, "locale": "zh-CN"}
DESKTOP = {"viewport": {"width": 1280, "height": 900}, "locale": "zh-CN"}


@pytest.fixture
async def town(make_settings: SettingsFactory, smtp: RunningSmtp) -> AsyncIterator[Town]:
    """The real app on 127.0.0.1 with SMS (Aliyun fake, receipts wired back) and email (fake SMTP)."""
    async with open_town(make_settings, smtp) as running:
        yield running


async def _context(browser: Any, options: dict[str, Any]) -> Any:
    context = await browser.new_context(**options)
    context.set_default_timeout(TIMEOUT_MS)
    return context


async def test_subscribe_verify_receive_and_unsubscribe_by_the_mailed_link(browser: Any, town: Town) -> None:
    """Sign up on a phone with the texted code, receive an alert, stop it by the mailed link (a GET stops nothing)."""
    context = await _context(browser, PHONE)
    page = await context.new_page()
    await sign_up(page, town, mobile=MOBILE, email=EMAIL)
    subscriber = await town.only_subscriber()
    assert subscriber.status == "active" and subscriber.region == "140402" and subscriber.groups == ["elderly"]
    assert subscriber.contacts == {"sms": E164, "email": EMAIL}
    assert await page.get_by_role("link", name="管理我的订阅").count() == 1
    ARTIFACTS.mkdir(exist_ok=True)
    await page.screenshot(path=str(ARTIFACTS / "citizen-subscribed.png"), full_page=True)
    await confirm_email(page, town, EMAIL)

    alert_id = await town.publish("长治市重污染天气橙色预警")
    [sms] = town.alert_sms_to(MOBILE)
    assert sms.sign_name == "长治市人民政府"
    [mail] = town.alert_mail_to(EMAIL)
    deliveries, _ = await town.service.store.list_deliveries(alert_id, 10, None)
    assert {(d.channel, d.status) for d in deliveries} == {("sms", "delivered"), ("email", "delivered")}

    unsubscribe = str(mail["List-Unsubscribe"]).strip("<>")
    assert unsubscribe.startswith(town.url + "/unsubscribe/") and unsubscribe == link_after(mail, "退订：")
    await page.goto(unsubscribe)
    await heading(page, "退订")
    assert "重污染天气预警" in (await page.locator("main dl").text_content() or "")
    assert (await town.only_subscriber()).subscriptions == subscriber.subscriptions  # a GET stops nothing
    await page.get_by_role("button", name="退订此主题").click()
    await heading(page, "已退订")
    assert "重污染天气预警" in (await page.get_by_role("status").text_content() or "")
    after = await town.only_subscriber()
    assert after.subscriptions == [] and after.contacts == subscriber.contacts  # stopped, not deleted

    sent_sms, sent_mail = len(town.sms.sent), len(town.smtp.messages)
    again = await town.publish("长治市重污染天气橙色预警（更新）")
    assert await town.service.store.list_deliveries(again, 10, None) == ([], 0)
    assert (len(town.sms.sent), len(town.smtp.messages)) == (sent_sms, sent_mail)
    await context.close()


async def test_manage_page_shows_masked_data_and_delete_leaves_no_byte_of_the_contacts(browser: Any,
                                                                                       town: Town) -> None:
    """From the mail's manage link: data shown masked, deleted on confirmation, then no byte of it in the DB or WAL."""
    context = await _context(browser, DESKTOP)
    page = await context.new_page()
    await sign_up(page, town, mobile=MOBILE, email=EMAIL)
    await confirm_email(page, town, EMAIL)
    await town.publish("长治市重污染天气橙色预警")
    [mail] = town.alert_mail_to(EMAIL)
    assert traces(town.service, E164, EMAIL)  # the scan sees the contacts while they are held

    manage = link_after(mail, "管理订阅、下载或删除个人信息：")
    assert manage.startswith(town.url + "/manage/")
    await page.goto(manage)
    await heading(page, "我的订阅")
    held = await page.locator("main dl").first.text_content() or ""
    for shown in (mask_mobile(E164), mask_email(EMAIL), "城区", "老年人", "重污染天气预警", "已验证"):
        assert shown in held, shown
    html = await page.content()
    assert MOBILE not in html and EMAIL not in html

    async with page.expect_download() as download_info:
        await page.get_by_role("link", name="下载数据（JSON）").click()
    data = json.loads((await (await download_info.value).path()).read_text(encoding="utf-8"))
    assert {c["channel"]: c["address"] for c in data["contacts"]} == {"sms": E164, "email": EMAIL}
    assert {d["channel"] for d in data["deliveries"]} == {"sms", "email"}

    await page.get_by_role("link", name="删除我的全部信息…").click()
    await heading(page, "确认删除全部信息")
    assert await town.service.store.count_subscribers() == 1  # the confirmation page deletes nothing
    await page.get_by_role("button", name="确认删除").click()
    await heading(page, "已删除")
    ARTIFACTS.mkdir(exist_ok=True)
    await page.screenshot(path=str(ARTIFACTS / "citizen-deleted.png"), full_page=True)

    assert await town.service.store.count_subscribers() == 0
    assert traces(town.service, E164, EMAIL) == []
    await page.goto(manage)
    await heading(page, "找不到订阅")
    await context.close()
