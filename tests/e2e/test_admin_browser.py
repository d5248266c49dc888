"""The admin dashboard in headless Chromium: sign in, watch the demo-like alert go out live, read the district
chart and the coverage figures (equal to the API's), export the CSV, and leave a screenshot for review in
test-artifacts/admin-alert.png."""

from __future__ import annotations

import csv
import io
from typing import Any

from notifier.models import Role
from notifier.terms import term
from tests.conftest import settle
from tests.e2e.conftest import ARTIFACTS, Served

LIVE_TIMEOUT_MS = 15_000


async def sign_in(page: Any, served: Served, path: str, role: Role = Role.ADMIN) -> None:
    """Open `path`, get sent to the sign-in form, sign in, and land back on `path`."""
    await page.goto(served.url + path)
    assert "/admin/login" in page.url
    await page.get_by_label("API 密钥（管理员或查看者）").fill(served.keys[role])
    await page.get_by_role("button", name="登录").click()
    await page.wait_for_url(served.url + path)


async def figure(page: Any, name: str) -> str:
    value = await page.locator(f'#live [data-figure="{name}"]').get_attribute("data-value")
    assert value is not None
    return str(value)


async def region_bars(page: Any) -> dict[str, dict[str, str]]:
    """code → the bar's figures and its visible text, read from the rendered SVG."""
    bars = page.locator("#chart-regions g.bar")
    out = {}
    for index in range(await bars.count()):
        bar = bars.nth(index)
        out[str(await bar.get_attribute("data-code"))] = {
            "targeted": str(await bar.get_attribute("data-targeted")),
            "reached": str(await bar.get_attribute("data-reached")),
            "label": await bar.locator("text.label").text_content() or "",
            "value": await bar.locator("text.value").text_content() or "",
        }
    return out


async def test_alert_page_goes_live_matches_the_api_and_exports_csv(browser: Any, served: Served) -> None:
    """Signed in, the alert page shows the figures rising to the API's coverage without a reload; the district
    chart has all 13 districts with the API's per-region figures; the CSV export parses to the API's cells."""
    context = await browser.new_context(viewport={"width": 1280, "height": 900}, locale="zh-CN")
    page = await context.new_page()
    await sign_in(page, served, f"/admin/alerts/{served.alert_id}")
    assert await figure(page, "reached") == "0"
    assert "发送中" in (await page.locator("#live-status").text_content() or "")

    await settle(served.service)  # the worker delivers while the page is open
    coverage = await served.api(f"/v1/alerts/{served.alert_id}/coverage")
    assert coverage["reached"] > 0
    await page.wait_for_function(
        "n => document.querySelector('#live [data-figure=reached]').dataset.value === String(n)",
        arg=coverage["reached"], timeout=LIVE_TIMEOUT_MS)

    coverage = await served.api(f"/v1/alerts/{served.alert_id}/coverage")
    for name in ("targeted", "reached", "accepted"):
        assert int(await figure(page, name)) == coverage[name], name
    assert float(await figure(page, "coverage_rate")) == coverage["coverage_rate"]
    shown_rate = await page.locator('#live [data-figure="coverage_rate"]').text_content()
    assert shown_rate == f"{coverage['coverage_rate'] * 100:.1f}%"

    bars = await region_bars(page)
    names = {r.code: r.name for r in served.service.catalogue.regions}
    assert list(bars) == list(names) and len(bars) == 13
    for code, bar in bars.items():
        assert bar["label"] == names[code]
        cell = coverage["by_region"].get(code, {"targeted": 0, "reached": 0})
        assert (int(bar["targeted"]), int(bar["reached"])) == (cell["targeted"], cell["reached"]), code
        if cell["targeted"]:
            assert bar["value"] == f"{cell['reached']}/{cell['targeted']} · {cell['coverage_rate'] * 100:.1f}%"
    chart = page.get_by_role("img", name="各区县覆盖率")
    assert await chart.count() == 1

    async with page.expect_download() as download_info:
        await page.locator('a.csv[href$="table=cells"]').click()
    download = await download_info.value
    raw = (await download.path()).read_bytes()
    assert raw.startswith(b"\xef\xbb\xbf")
    rows = list(csv.DictReader(io.StringIO(raw.decode("utf-8-sig"))))
    assert [(r["region"], r["group"] or None, int(r["targeted"]), int(r["reached"])) for r in rows] == [
        (c["region"], c["group"], c["targeted"], c["reached"]) for c in coverage["cells"]]
    assert {r["region_name"] for r in rows} <= set(names.values())

    await page.wait_for_function("document.querySelector('#live').dataset.done === 'true'", timeout=LIVE_TIMEOUT_MS)
    await page.locator("#details-regions summary").click()
    ARTIFACTS.mkdir(exist_ok=True)
    await page.screenshot(path=str(ARTIFACTS / "admin-alert.png"), full_page=True)
    await context.close()


async def test_pages_work_without_javascript(browser: Any, served: Served) -> None:
    """With JavaScript off, signing in, the list and the alert page with its chart and filters all work."""
    await settle(served.service)
    context = await browser.new_context(java_script_enabled=False, locale="zh-CN")
    page = await context.new_page()
    await sign_in(page, served, "/admin")
    link = page.locator(f'a[href="/admin/alerts/{served.alert_id}"]')
    await link.click()
    await page.wait_for_url(f"{served.url}/admin/alerts/{served.alert_id}")
    coverage = await served.api(f"/v1/alerts/{served.alert_id}/coverage")
    assert int(await figure(page, "reached")) == coverage["reached"]
    assert await page.locator("#chart-regions g.bar").count() == 13
    await page.get_by_label("渠道", exact=True).select_option("webhook")
    await page.get_by_role("button", name="筛选").click()
    await page.wait_for_url("**channel=webhook**")
    channels = await page.locator("#table-deliveries tbody tr td:nth-child(2)").all_text_contents()
    assert channels and set(channels) == {term("channel", "webhook", "zh-CN")}
    await context.close()


async def test_english_switch_and_viewer_suppression(browser: Any, served: Served) -> None:
    """A viewer switches to English with one click (remembered on the next page); districts with fewer than 5
    targeted, and those that would give them away, show "hidden" instead of figures."""
    await settle(served.service)
    context = await browser.new_context(locale="zh-CN")
    page = await context.new_page()
    await sign_in(page, served, f"/admin/alerts/{served.alert_id}", Role.VIEWER)
    await page.get_by_role("link", name="English", exact=True).click()
    await page.wait_for_url("**lang=en**")
    assert await page.locator("html").get_attribute("lang") == "en"
    assert await page.get_by_role("img", name="Coverage by district").count() == 1
    await page.goto(f"{served.url}/admin")
    assert await page.get_by_role("heading", name="Recent disclosures").count() == 1
    await page.goto(f"{served.url}/admin/alerts/{served.alert_id}")
    coverage = await served.api(f"/v1/alerts/{served.alert_id}/coverage", Role.VIEWER)
    bars = await region_bars(page)
    for code, cell in coverage["by_region"].items():
        if cell.get("suppressed"):
            assert bars[code]["value"] == "hidden" and bars[code]["targeted"] == ""
    assert any(cell.get("suppressed") for cell in coverage["by_region"].values())
    await context.close()
