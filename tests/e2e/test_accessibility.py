"""WCAG 2.1 AA in a real browser: axe-core over the citizen's pages (sign-up and each of its steps, manage,
delete, unsubscribe, a proxy's list of whom to tell), the public column (list, a disclosure, the catalogue) and
the dashboard (sign-in, the list, one alert, the deadlines, what waits for approval, not yet told), at desktop
(1280 px) and phone (390 px) widths — no serious or critical finding. And what axe does not measure but readers
notice: a focus ring that shows, 18px text for citizens, a catalogue caption and an alert list that fit a phone."""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator
from datetime import datetime
from typing import Any

import pytest

from notifier.config import ApprovalSettings
from notifier.fakes.smtp import RunningSmtp
from notifier.keys import create_key
from notifier.localtime import LOCAL_TZ
from notifier.models import AlertIn, Role
from notifier.publish import publish_alert
from notifier.subscribers import create_subscriber
from notifier.web.admin.compliance import shift
from subscriptions.models import SubscriberIn
from tests.conftest import SettingsFactory, settle
from tests.e2e.axe import Finding, audit, new_context, report
from tests.e2e.citizen_support import (
    CITY_DISTRICT,
    TIMEOUT_MS,
    Town,
    enter_code,
    fill_form,
    heading,
    link_after,
    open_town,
)
from tests.e2e.conftest import Served

MOBILE = "13935550177"
EMAIL = "li.na@example.org"
PROXY_EMAIL = "grid.worker@example.org"


@pytest.fixture
async def town(make_settings: SettingsFactory, smtp: RunningSmtp) -> AsyncIterator[Town]:
    async with open_town(make_settings, smtp) as running:
        yield running


async def _page(browser: Any, width: str, lang: str = "zh-CN") -> tuple[Any, Any]:
    context = await new_context(browser, width, lang)
    context.set_default_timeout(TIMEOUT_MS)
    return context, await context.new_page()


async def _sign_up_auditing(page: Any, town: Town, found: list[Finding]) -> None:
    """The sign-up form, the form with errors, the verification page and the done page, each audited."""
    await page.goto(town.url + "/subscribe")
    found += await audit(page, "/subscribe")
    await page.get_by_role("button", name="提交订阅").click()
    await heading(page, "订阅公益信息")
    found += await audit(page, "/subscribe (errors)")
    await fill_form(page, mobile=MOBILE, email=EMAIL)
    await page.get_by_role("button", name="提交订阅").click()
    await heading(page, "请确认您的联系方式")
    found += await audit(page, "/subscribe (verify)")
    await enter_code(page, town, MOBILE)
    found += await audit(page, "/subscribe (done)")


async def _own_pages_auditing(page: Any, town: Town, found: list[Finding]) -> None:
    """The emailed confirmation, the manage and delete pages, unsubscribe and its answer, an invalid link."""
    [mail] = town.smtp.messages_to(EMAIL)
    confirm = re.search(r"http://\S+/subscribe/confirm/\S+", str(mail.message.get_body(("plain",)).get_content()))
    assert confirm is not None
    await page.goto(confirm.group(0))
    found += await audit(page, "/subscribe/confirm")
    await page.get_by_role("button", name="确认订阅").click()
    await heading(page, "订阅已生效")
    await town.publish("长治市重污染天气橙色预警")
    [alert_mail] = town.alert_mail_to(EMAIL)
    await page.goto(link_after(alert_mail, "管理订阅、下载或删除个人信息："))
    found += await audit(page, "/manage")
    await page.get_by_role("link", name="删除我的全部信息…").click()
    await heading(page, "确认删除全部信息")
    found += await audit(page, "/manage/delete")
    await page.goto(str(alert_mail["List-Unsubscribe"]).strip("<>"))
    found += await audit(page, "/unsubscribe")
    await page.get_by_role("button", name="退订此主题").click()
    await heading(page, "已退订")
    found += await audit(page, "/unsubscribe (done)")
    await page.goto(town.url + "/subscribe/confirm/not-a-token")
    found += await audit(page, "/subscribe/confirm (invalid)")


@pytest.mark.parametrize("width", ["desktop", "phone"])
async def test_citizen_pages_have_no_serious_accessibility_findings(browser: Any, town: Town, width: str) -> None:
    """Sign-up and every step after it, the manage and delete pages and unsubscribe pass axe's WCAG 2.1 AA rules."""
    context, page = await _page(browser, width)
    found: list[Finding] = []
    await _sign_up_auditing(page, town, found)
    await _own_pages_auditing(page, town, found)
    await context.close()
    assert not found, report(found)


async def _manage_without_a_link_auditing(page: Any, town: Town, found: list[Finding]) -> None:
    """/manage without a link: the question, a mistyped answer, the code form, a wrong code, then the page."""
    body = SubscriberIn.model_validate({"contacts": {"sms": "+86" + MOBILE}, "region": CITY_DISTRICT,
                                        "subscriptions": [{"topic": "env.heavy-pollution", "channels": ["sms"]}]})
    await create_subscriber(town.service.store, body, allow_private_webhooks=False)
    await page.goto(town.url + "/manage")
    await heading(page, "管理我的订阅")
    found += await audit(page, "/manage (no link)")
    await page.get_by_label("手机号码或电子邮箱").fill("12345")
    await page.get_by_role("button", name="下一步").click()
    await page.locator("#contact-error").wait_for()
    found += await audit(page, "/manage (not a number)")
    await page.get_by_label("手机号码或电子邮箱").fill(MOBILE)
    await page.get_by_role("button", name="下一步").click()
    await page.get_by_label("6位验证码").wait_for()
    found += await audit(page, "/manage (code form)")
    for _ in range(500):  # the code is texted after the page answers
        if town.codes_to(MOBILE):
            break
        await asyncio.sleep(0.01)
    [code] = town.codes_to(MOBILE)
    await page.get_by_label("6位验证码").fill(f"{(int(code) + 1) % 1_000_000:06d}")
    await page.get_by_role("button", name="进入我的订阅").click()
    await page.locator("#code-error").wait_for()
    found += await audit(page, "/manage/verify (wrong code)")
    await page.get_by_label("6位验证码").fill(code)
    await page.get_by_role("button", name="进入我的订阅").click()
    await page.wait_for_url(re.compile(r".*/manage/[A-Za-z0-9_.~-]+\?lang=zh-CN$"))


@pytest.mark.parametrize("width", ["desktop", "phone"])
async def test_manage_without_a_link_has_no_serious_accessibility_findings(browser: Any, town: Town,
                                                                          width: str) -> None:
    """/manage without a link, each of its answers and the code form pass axe's WCAG 2.1 AA rules, and the code
    opens the subscriber's page."""
    context, page = await _page(browser, width)
    found: list[Finding] = []
    await _manage_without_a_link_auditing(page, town, found)
    await context.close()
    assert not found, report(found)


async def _admin_key(town: Town) -> str:
    return (await create_key(town.service.store, Role.ADMIN))[1]


@pytest.mark.parametrize(("width", "lang"), [("desktop", "zh-CN"), ("phone", "zh-CN"), ("desktop", "en"),
                                             ("phone", "en")])
async def test_public_and_admin_pages_have_no_serious_accessibility_findings(browser: Any, town: Town, width: str,
                                                                           lang: str) -> None:
    """The public list, a disclosure and the catalogue; the dashboard's sign-in, list, alert and deadlines pages."""
    alert_id = await town.publish("长治市重污染天气橙色预警")
    context, page = await _page(browser, width, lang)
    found: list[Finding] = []
    for path in ("/disclosures", f"/disclosures/{alert_id}", "/catalogue", "/admin/login"):
        await page.goto(town.url + path)
        found += await audit(page, path)
    await page.locator("#key").fill(await _admin_key(town))
    await page.locator("form.login button").click()
    await page.wait_for_url(town.url + "/admin")
    found += await audit(page, "/admin")
    await page.goto(f"{town.url}/admin/alerts/{alert_id}")
    await page.locator("#details-regions summary").click()
    found += await audit(page, "/admin/alerts/{id}")
    for month in await _deadlines(town):
        await page.goto(f"{town.url}/admin/compliance?period={month}")
        found += await audit(page, "/admin/compliance")
    await context.close()
    assert not found, report(found)


async def _held(town: Town) -> str:
    """A red warning for the whole city held for approval (the rules passed in: the town has none configured)."""
    alert, _ = await publish_alert(town.service.store, AlertIn(
        topic="env.heavy-pollution", headline="长治市重污染天气红色预警", severity="extreme", level="red",
        body="预计未来72小时全市将出现严重污染天气。", instruction="停止户外活动，关闭门窗。"), None,
        approval=ApprovalSettings(severities=["extreme"]))
    return alert.id


@pytest.mark.parametrize(("width", "lang"), [("desktop", "zh-CN"), ("phone", "zh-CN"), ("desktop", "en"),
                                             ("phone", "en")])
async def test_the_approval_list_and_its_answers_have_no_serious_accessibility_findings(
        browser: Any, town: Town, width: str, lang: str) -> None:
    """The dashboard with an alert waiting for approval (its card and both forms), the page a refused reason
    answers, and the list after approval; at a phone's width nothing scrolls sideways."""
    alert_id = await _held(town)
    context, page = await _page(browser, width, lang)
    found: list[Finding] = []
    await page.goto(town.url + "/admin/login")
    await page.locator("#key").fill(await _admin_key(town))
    await page.locator("form.login button").click()
    await page.wait_for_url(town.url + "/admin")
    found += await audit(page, "/admin (waiting for approval)")
    fits = await page.evaluate("() => document.documentElement.scrollWidth <= window.innerWidth")
    await page.locator(f"#r-{alert_id}").fill(" ")
    await page.locator(f'form[action="/admin/alerts/{alert_id}/reject"] button').click()
    found += await audit(page, "/admin/alerts/{id}/reject (no reason)")
    await page.goto(town.url + "/admin")
    await page.locator(f'form[action="/admin/alerts/{alert_id}/approve"] button').click()
    await page.wait_for_url(town.url + "/admin#waiting")
    found += await audit(page, "/admin (approved)")
    await context.close()
    assert fits
    assert not found, report(found)


@pytest.mark.parametrize("width", ["desktop", "phone"])
async def test_the_dashboard_as_a_viewer_sees_it_has_no_serious_accessibility_findings(browser: Any, served: Served,
                                                                                     width: str) -> None:
    """A viewer's list and alert page, with hidden figures ("已隐藏") and no deliveries table."""
    await settle(served.service)
    context, page = await _page(browser, width)
    await page.goto(served.url + "/admin/login")
    await page.locator("#key").fill(served.keys[Role.VIEWER])
    await page.locator("form.login button").click()
    await page.wait_for_url(served.url + "/admin")
    found = await audit(page, "/admin (viewer)")
    await page.goto(f"{served.url}/admin/alerts/{served.alert_id}")
    assert await page.locator("#chart-regions g.bar[data-suppressed=true]").count() > 0
    assert await page.locator("#table-deliveries").count() == 0
    await page.locator("#details-regions summary").click()
    found += await audit(page, "/admin/alerts/{id} (viewer)")
    await context.close()
    assert not found, report(found)


async def _deadlines(town: Town) -> list[str]:
    """A monthly topic owed from two months ago, published late then, missed last month: those two months."""
    months = [shift(datetime.now(LOCAL_TZ).strftime("%Y-%m"), n) for n in (-2, -1)]
    await town.service.store.create_topic({
        "key": "env.ranking-a11y", "name": "空气质量月度排名", "name_en": "Monthly air quality ranking",
        "domain": "environment", "department": "市环保局", "channels": ["sms"],
        "schedule": {"every": "month", "by_day": 1, "since": months[0]}})
    late = datetime.fromisoformat(f"{months[0]}-15T09:00:00").replace(tzinfo=LOCAL_TZ).timestamp()
    await publish_alert(town.service.store, AlertIn(topic="env.ranking-a11y", headline="排名"), None, now=late)
    return months


# ---------------------------------------------------------------- what axe does not measure


async def _proxy_page(town: Town) -> tuple[str, str]:
    """A grid worker (email) with two people to tell; an alert for the elderly; the page its email links to."""
    body = SubscriberIn.model_validate({
        "contacts": {"email": PROXY_EMAIL}, "region": CITY_DISTRICT, "role": "proxy",
        "assists": [{"label": "3号楼2单元 王奶奶", "region": CITY_DISTRICT, "groups": ["elderly"]},
                    {"label": "5号楼 李大爷", "region": CITY_DISTRICT, "groups": ["elderly"]}],
        "subscriptions": [{"topic": "env.heavy-pollution", "channels": ["email"]}]})
    await create_subscriber(town.service.store, body, allow_private_webhooks=True)
    alert_id = await town.publish("长治市重污染天气橙色预警")
    [mail] = town.alert_mail_to(PROXY_EMAIL)
    link = re.search(r"http://\S+/assist/\S+", str(mail.get_body(("plain",)).get_content()))
    assert link is not None
    return alert_id, link.group(0)


@pytest.mark.parametrize("width", ["desktop", "phone"])
async def test_the_proxys_page_has_no_serious_accessibility_findings(browser: Any, town: Town, width: str) -> None:
    """A grid worker's list of whom to tell, before and after confirming one person, and the alert's dashboard page
    with who is not yet told, pass WCAG 2.1 AA."""
    alert_id, url = await _proxy_page(town)
    context, page = await _page(browser, width)
    found: list[Finding] = []
    await page.goto(url)
    found += await audit(page, "/assist")
    await page.get_by_role("button", name="确认已转告：3号楼2单元 王奶奶").click()
    await page.get_by_text("已转告", exact=True).wait_for()
    found += await audit(page, "/assist (one told)")
    await page.goto(town.url + "/admin/login")
    await page.locator("#key").fill(await _admin_key(town))
    await page.locator("form.login button").click()
    await page.wait_for_url(town.url + "/admin")
    await page.goto(f"{town.url}/admin/alerts/{alert_id}")
    await page.locator("#table-untold").wait_for()
    found += await audit(page, "/admin/alerts/{id} (not yet told)")
    await context.close()
    assert not found, report(found)


def _luminance(rgb: tuple[float, ...]) -> float:
    channels = [c / 255 for c in rgb[:3]]
    lin = [c / 12.92 if c <= 0.04045 else ((c + 0.055) / 1.055) ** 2.4 for c in channels]
    return 0.2126 * lin[0] + 0.7152 * lin[1] + 0.0722 * lin[2]


def contrast(a: tuple[float, ...], b: tuple[float, ...]) -> float:
    high, low = sorted((_luminance(a), _luminance(b)), reverse=True)
    return (high + 0.05) / (low + 0.05)


_FOCUS = """(selector) => {
  const el = document.querySelector(selector);
  el.focus({focusVisible: true});
  const rgb = s => s.match(/[\\d.]+/g).map(Number);
  let bg = el.parentElement;
  while (bg && rgb(getComputedStyle(bg).backgroundColor)[3] === 0) bg = bg.parentElement;
  const style = getComputedStyle(el);
  return {outline: rgb(style.outlineColor), width: parseFloat(style.outlineWidth), style: style.outlineStyle,
          background: bg ? rgb(getComputedStyle(bg).backgroundColor) : [255, 255, 255]};
}"""


@pytest.mark.parametrize(("path", "selector"), [
    ("/subscribe", "main a, main input[type=checkbox]"), ("/subscribe", "header a"),
    ("/disclosures", "main a"), ("/disclosures", "header a"), ("/admin/login", "main input#key"),
    ("/admin/login", "header a"),
])
async def test_the_focus_ring_stands_out_from_what_surrounds_it(browser: Any, town: Town, path: str,
                                                                selector: str) -> None:
    """A focused control's ring is drawn, at least 2px, with 3:1 contrast against the background around it."""
    context, page = await _page(browser, "desktop")
    await page.goto(town.url + path)
    await page.keyboard.press("Tab")  # keyboard use: :focus-visible applies from here on
    ring = await page.evaluate(_FOCUS, selector)
    await context.close()
    assert ring["style"] != "none" and ring["width"] >= 2
    assert contrast(tuple(ring["outline"]), tuple(ring["background"])) >= 3, ring


@pytest.mark.parametrize("path", ["/subscribe", "/disclosures", "/catalogue"])
async def test_citizen_text_and_hints_are_18px(browser: Any, town: Town, path: str) -> None:
    """Body text and the grey hints under fields are 18px on the pages citizens read (the hints were 14px)."""
    context, page = await _page(browser, "phone")
    await page.goto(town.url + path)
    sizes = await page.evaluate("""() => [getComputedStyle(document.body).fontSize,
        ...[...document.querySelectorAll('.hint')].map(el => getComputedStyle(el).fontSize)]""")
    await context.close()
    assert all(float(size.removesuffix("px")) >= 18 for size in sizes), sizes


async def test_catalogue_captions_read_across_a_phone(browser: Any, town: Town) -> None:
    """At 390 px a domain's caption spans the card, not one character a line."""
    context, page = await _page(browser, "phone")
    await page.goto(town.url + "/catalogue")
    boxes = await page.evaluate("""() => [...document.querySelectorAll('table.catalogue caption')].map(c => {
        const r = c.getBoundingClientRect(); return [r.width, r.height,
        parseFloat(getComputedStyle(c).lineHeight)]; })""")
    await context.close()
    assert boxes and all(width > 250 and height < 3 * line for width, height, line in boxes), boxes


async def test_the_alert_list_fits_a_phone(browser: Any, town: Town) -> None:
    """At 390 px the dashboard's alert list needs no sideways scrolling: each alert is a card whose headline link
    spans the card and whose figures are all in view."""
    alert_id = await town.publish("长治市重污染天气橙色预警")
    context, page = await _page(browser, "phone")
    await page.goto(town.url + "/admin/login")
    await page.locator("#key").fill(await _admin_key(town))
    await page.locator("form.login button").click()
    await page.wait_for_url(town.url + "/admin")
    layout = await page.evaluate("""(id) => {
        const row = document.querySelector(`tr[data-alert="${id}"]`);
        const scroller = row.closest('.scroll');
        return {page: [document.documentElement.scrollWidth, window.innerWidth],
                table: [scroller.scrollWidth, scroller.clientWidth],
                link: row.querySelector('a').getBoundingClientRect().width,
                cells: [...row.querySelectorAll('td')].map(td => td.getBoundingClientRect().right)}; }""", alert_id)
    await context.close()
    assert layout["page"][0] <= layout["page"][1] and layout["table"][0] <= layout["table"][1], layout
    assert layout["link"] > 300 and max(layout["cells"]) <= 390, layout
