"""The admin dashboard (/admin): sign-in with admin or viewer keys into a server-side session, CSRF on every form,
figures equal to the API's coverage, viewers' small cells suppressed, contacts masked, CSV exports."""

from __future__ import annotations

import csv
import io
import re
import time
from collections.abc import Awaitable, Callable
from http.cookies import SimpleCookie
from typing import Any

import pytest
from aiohttp import ClientResponse
from yarl import URL

from notifier.fakes.smtp import RunningSmtp
from notifier.fakes.webhook_receiver import RunningReceiver
from notifier.keys import revoke_key
from notifier.models import Role
from notifier.web.admin.session import LOGIN_COOKIE, SESSION_COOKIE, SessionStore
from notifier.web.pages import LANG_COOKIE
from tests.web.conftest import EMAIL, MOBILE, MOBILE_DIGITS, Api, ApiFactory

pytestmark = pytest.mark.both_backends

AdminFactory = Callable[..., Awaitable[Api]]
CSRF = re.compile(r'name="csrf" value="([^"]+)"')


@pytest.fixture
def make_admin(make_api: ApiFactory, smtp: RunningSmtp) -> AdminFactory:
    """`create(name="t", **settings_overrides)`: the real app (dashboard included) with email to the fake SMTP
    server, served on loopback, with a key per role — `make_api` with an email channel."""

    async def create(name: str = "t", **extra: Any) -> Api:
        channels = {"email": {"host": smtp.host, "port": smtp.port, "tls": "none", "sender": "notify@changzhi.gov.cn"},
                    "webhook": {"allow_private_networks": True}}
        return await make_api(name, channels=channels, **extra)

    return create


@pytest.fixture
async def admin(make_admin: AdminFactory) -> Api:
    return await make_admin()


def set_cookies(response: ClientResponse) -> dict[str, str]:
    """name → the raw Set-Cookie header of that cookie, as the server sent it."""
    out = {}
    for header in response.headers.getall("Set-Cookie", []):
        out[header.split("=", 1)[0]] = header
    return out


async def login_form(api: Api) -> str:
    response = await api.client.get("/admin/login")
    assert response.status == 200
    match = CSRF.search(await response.text())
    assert match
    return match.group(1)


async def sign_in(api: Api, role: Role = Role.ADMIN, **extra: str) -> ClientResponse:
    token = await login_form(api)
    return await api.client.post("/admin/login", data={"csrf": token, "key": api.keys[role], **extra},
                                 allow_redirects=False)


async def page(api: Api, path: str, status: int = 200) -> str:
    response = await api.client.get(path, allow_redirects=False)
    assert response.status == status, await response.text()
    return await response.text()


async def delivered_alert(api: Api, receiver: RunningReceiver, **body: Any) -> str:
    """An alert delivered to subscribers in 城区 (6 by email) and 郊区 (2 by webhook), dispatched to the end."""
    for i in range(6):
        await api.subscriber(contacts={"email": f"resident{i}@example.org"}, region="140402", groups=["elderly"],
                             subscriptions=[{"topic": "env.heavy-pollution", "channels": ["email"]}])
    for i in range(2):
        await api.subscriber(contacts={"webhook": receiver.url_for(f"/org/{i}")}, region="140411", groups=[],
                             subscriptions=[{"topic": "env.heavy-pollution", "channels": ["webhook"]}])
    status, accepted = await api.publish(**body)
    assert status == 202
    await api.service.dispatcher.drain(timeout=10)
    return str(accepted["id"])


async def api_coverage(api: Api, alert_id: str, role: Role = Role.ADMIN) -> dict[str, Any]:
    response = await api.client.get(f"/v1/alerts/{alert_id}/coverage", headers=api.auth(role))
    assert response.status == 200
    data: dict[str, Any] = await response.json()
    return data


def figure(html: str, name: str) -> str:
    match = re.search(rf'data-figure="{name}" data-value="([^"]*)"', html)
    assert match, name
    return match.group(1)


# ---------------------------------------------------------------- signing in


async def test_unauthenticated_pages_redirect_to_the_sign_in_form(admin: Api) -> None:
    """Without a session, /admin and an alert page answer 303 to /admin/login with the way back in `next`."""
    for path in ("/admin", "/admin/alerts/" + "0" * 32, "/admin/alerts/" + "0" * 32 + "/export.csv"):
        response = await admin.client.get(path, allow_redirects=False)
        location = URL(response.headers["Location"])
        assert response.status == 303 and location.path == "/admin/login" and location.query["next"] == path


async def test_live_fragments_without_a_session_are_401(admin: Api) -> None:
    """The polled fragments answer 401 (not a redirect) so that the script stops polling."""
    for path in ("/admin/live", "/admin/alerts/" + "0" * 32 + "/live"):
        assert (await admin.client.get(path, allow_redirects=False)).status == 401


async def test_sign_in_form_is_labelled_and_carries_a_csrf_token(admin: Api) -> None:
    """The form has a labelled key field, a CSRF token, and the token is also set as an HttpOnly strict cookie."""
    response = await admin.client.get("/admin/login")
    html = await response.text()
    assert '<html lang="zh-CN">' in html and '<label for="key">' in html and 'id="key"' in html
    cookie = set_cookies(response)[LOGIN_COOKIE]
    assert "HttpOnly" in cookie and "SameSite=Strict" in cookie and "Path=/admin" in cookie


@pytest.mark.parametrize("lang", ["zh-CN", "en"])
async def test_sign_in_hint_shows_the_commands_as_code(admin: Api, lang: str) -> None:
    """The hint names the key-making commands as code, not with the literal backticks of a Markdown source."""
    hint = (await page(admin, f"/admin/login?lang={lang}")).split('id="key-hint">', 1)[1].split("</p>", 1)[0]
    assert "<code>notifier keys create --role admin</code>" in hint and "<code>--role viewer</code>" in hint
    assert "`" not in hint


async def test_admin_key_signs_in_with_a_strict_http_only_session_cookie(admin: Api) -> None:
    """An admin key gets 303 to /admin and a session cookie that is HttpOnly, SameSite=Strict, Path=/admin and
    (on plain http) not Secure; the dashboard then answers 200."""
    response = await sign_in(admin)
    assert response.status == 303 and response.headers["Location"] == "/admin"
    cookie = set_cookies(response)[SESSION_COOKIE]
    assert "HttpOnly" in cookie and "SameSite=Strict" in cookie and "Path=/admin" in cookie
    assert "Secure" not in cookie
    assert admin.keys[Role.ADMIN] not in cookie
    html = await page(admin, "/admin")
    assert "最近发布的信息" in html


async def test_session_cookie_is_secure_behind_an_https_public_url(make_admin: AdminFactory) -> None:
    """With server.public_url on https the session cookie carries Secure."""
    api = await make_admin("https", server={"public_url": "https://notify.changzhi.gov.cn"})
    form = await api.client.get("/admin/login")
    login_cookie = SimpleCookie(set_cookies(form)[LOGIN_COOKIE])[LOGIN_COOKIE].value
    assert "Secure" in set_cookies(form)[LOGIN_COOKIE]
    # The test speaks plain http, so the client keeps Secure cookies to itself: send the form's cookie by hand.
    response = await api.client.post(
        "/admin/login", data={"csrf": login_cookie, "key": api.keys[Role.ADMIN]},
        headers={"Cookie": f"{LOGIN_COOKIE}={login_cookie}"}, allow_redirects=False)
    assert response.status == 303
    assert "Secure" in set_cookies(response)[SESSION_COOKIE]


async def test_viewer_key_signs_in(admin: Api) -> None:
    """A viewer key may sign in too, and the page names the role."""
    assert (await sign_in(admin, Role.VIEWER)).status == 303
    assert "查看者" in await page(admin, "/admin")


async def test_publisher_key_is_refused(admin: Api) -> None:
    """A publisher key gets 403, the form again with a reason, and no session."""
    response = await sign_in(admin, Role.PUBLISHER)
    assert response.status == 403
    assert "发布方密钥不能登录" in await response.text()
    assert SESSION_COOKIE not in set_cookies(response)
    assert (await admin.client.get("/admin", allow_redirects=False)).status == 303


async def test_unknown_key_is_refused(admin: Api) -> None:
    """An unknown key gets 401 and no session."""
    token = await login_form(admin)
    response = await admin.client.post("/admin/login", data={"csrf": token, "key": "ntf_adm_nope"},
                                       allow_redirects=False)
    assert response.status == 401 and SESSION_COOKIE not in set_cookies(response)


async def test_sign_in_without_the_form_token_is_refused(admin: Api) -> None:
    """A sign-in POST whose CSRF token does not match the form's cookie is 403 and starts no session."""
    await login_form(admin)
    response = await admin.client.post("/admin/login", data={"csrf": "forged", "key": admin.keys[Role.ADMIN]},
                                       allow_redirects=False)
    assert response.status == 403 and SESSION_COOKIE not in set_cookies(response)


async def test_next_never_leaves_the_dashboard(admin: Api) -> None:
    """`next` pointing to another site lands on /admin instead; a dashboard path is honoured."""
    for given, expected in (("//evil.example/x", "/admin"), ("https://evil.example/", "/admin"),
                            ("/admin/../../x", "/admin"), ("/admin/alerts/abc", "/admin/alerts/abc")):
        admin.client.session.cookie_jar.clear()
        assert (await sign_in(admin, next=given)).headers["Location"] == expected


async def test_logout_needs_the_session_csrf_token(admin: Api) -> None:
    """POST /admin/logout without the session's token is 403 and keeps the session; with it, the session ends."""
    await sign_in(admin)
    html = await page(admin, "/admin")
    token = CSRF.search(html).group(1)  # type: ignore[union-attr]
    refused = await admin.client.post("/admin/logout", data={"csrf": "wrong"}, allow_redirects=False)
    assert refused.status == 403
    assert (await admin.client.get("/admin", allow_redirects=False)).status == 200
    done = await admin.client.post("/admin/logout", data={"csrf": token}, allow_redirects=False)
    assert done.status == 303 and done.headers["Location"] == "/admin/login"
    assert (await admin.client.get("/admin", allow_redirects=False)).status == 303


async def test_revoking_the_key_ends_its_sessions(admin: Api) -> None:
    """Once the key a session signed in with is revoked, the next request is sent back to sign in."""
    await sign_in(admin)
    await revoke_key(admin.service.store, admin.keys[Role.ADMIN])
    assert (await admin.client.get("/admin", allow_redirects=False)).status == 303


async def test_pages_carry_a_strict_content_security_policy(admin: Api) -> None:
    """Dashboard pages allow scripts, styles and requests from the server itself only, and are never cached."""
    response = await admin.client.get("/admin/login")
    policy = response.headers["Content-Security-Policy"]
    assert "default-src 'none'" in policy and "script-src 'self'" in policy and "frame-ancestors 'none'" in policy
    assert response.headers["Cache-Control"] == "no-store"
    assert not re.search(r"""(src|href)=["']?(https?:)?//""", await response.text())


# ---------------------------------------------------------------- what the pages show


async def test_alert_list_shows_live_figures(admin: Api, receiver: RunningReceiver) -> None:
    """The list shows each alert with its targeted and reached counts and rate, linking to its page."""
    alert_id = await delivered_alert(admin, receiver)
    await sign_in(admin)
    html = await page(admin, "/admin")
    row = re.search(rf'<tr data-alert="{alert_id}">(.*?)</tr>', html, re.S)
    assert row and f'href="/admin/alerts/{alert_id}"' in row.group(1)
    assert re.search(r'data-figure="targeted">8<', row.group(1))
    assert re.search(r'data-figure="reached">8<', row.group(1))
    assert "100.0%" in row.group(1)


async def test_alert_page_figures_equal_the_api_coverage(admin: Api, receiver: RunningReceiver) -> None:
    """The alert page's targeted, reached, accepted and rate are the API's coverage figures."""
    alert_id = await delivered_alert(admin, receiver)
    await sign_in(admin)
    html = await page(admin, f"/admin/alerts/{alert_id}")
    coverage = await api_coverage(admin, alert_id)
    for name in ("targeted", "reached", "accepted"):
        assert int(figure(html, name)) == coverage[name]
    assert float(figure(html, "coverage_rate")) == pytest.approx(coverage["coverage_rate"])


async def test_region_chart_has_a_bar_per_district_with_text_and_a_title(admin: Api,
                                                                         receiver: RunningReceiver) -> None:
    """The district chart is an accessible SVG (role=img, title, desc) with one bar per catalogue district, each
    labelled by name and by its figures as text."""
    alert_id = await delivered_alert(admin, receiver)
    await sign_in(admin)
    html = await page(admin, f"/admin/alerts/{alert_id}")
    chart = re.search(r'<svg class="chart bars" id="chart-regions".*?</svg>', html, re.S)
    assert chart and 'role="img"' in chart.group(0)
    assert "<title id=\"chart-regions-title\">各区县覆盖率</title>" in chart.group(0)
    bars = re.findall(r'<g class="bar[^"]*" data-code="(\d{6})"', chart.group(0))
    assert len(bars) == len(admin.service.catalogue.regions) == 13
    for region in admin.service.catalogue.regions:
        assert f">{region.name}</text>" in chart.group(0)
    assert ">6/6 · 100.0%</text>" in chart.group(0) and ">2/2 · 100.0%</text>" in chart.group(0)


async def test_population_rate_shows_beside_the_subscriber_rate(admin: Api, receiver: RunningReceiver) -> None:
    """Once a population table is loaded, the page shows reached of residents on record, as the API does."""
    rows = [{"region": "140402", "group": None, "residents": 400}, {"region": "140411", "group": None,
                                                                   "residents": 100}]
    loaded = await admin.client.put("/v1/population", json={"rows": rows}, headers=admin.auth())
    assert loaded.status == 200, await loaded.text()
    alert_id = await delivered_alert(admin, receiver, regions=["140402", "140411"])
    await sign_in(admin)
    html = await page(admin, f"/admin/alerts/{alert_id}")
    coverage = await api_coverage(admin, alert_id)
    assert coverage["population"] == 500
    assert float(figure(html, "population_rate")) == pytest.approx(coverage["population_rate"])
    assert "8 / 500 名在册居民" in html


async def test_live_fragments_carry_the_figures_and_the_deliveries(admin: Api, receiver: RunningReceiver) -> None:
    """The polled fragment of an alert has the figures block (marked done once nothing is pending) and the
    deliveries table of the page's filters; the list's fragment has the list's rows."""
    alert_id = await delivered_alert(admin, receiver)
    await sign_in(admin)
    fragment = await page(admin, f"/admin/alerts/{alert_id}/live?channel=webhook")
    assert '<div id="live" data-live-block' in fragment and 'data-done="true"' in fragment
    assert '<div id="live-deliveries" data-live-block>' in fragment
    assert fragment.count("<tr data-delivery=") == 2
    assert int(figure(fragment, "reached")) == 8
    listing = await page(admin, "/admin/live")
    assert f'<tr data-alert="{alert_id}">' in listing and "<html" not in listing


async def test_a_pending_alert_asks_for_live_updates(admin: Api) -> None:
    """While deliveries are queued the page says it is sending and the figures block is not done."""
    await admin.subscriber()
    _, accepted = await admin.publish()
    await sign_in(admin)
    html = await page(admin, f"/admin/alerts/{accepted['id']}")
    assert 'data-done="false"' in html and "发送中，每 2 秒自动刷新" in html
    assert '<script src="/admin/static/admin.js" defer></script>' in html


async def test_unknown_alert_is_an_html_404(admin: Api) -> None:
    """An alert that does not exist is a 404 page, not a problem document."""
    await sign_in(admin)
    response = await admin.client.get("/admin/alerts/" + "f" * 32)
    assert response.status == 404 and response.content_type == "text/html"


async def test_viewer_sees_small_cells_suppressed(admin: Api, receiver: RunningReceiver) -> None:
    """For a viewer, 郊区 (2 targeted, under k=5) shows "已隐藏" in the chart and the CSV has it suppressed; 城区 (6)
    is hidden with it, as 8 targeted − 6 would give 郊区 away."""
    alert_id = await delivered_alert(admin, receiver)
    await sign_in(admin, Role.VIEWER)
    html = await page(admin, f"/admin/alerts/{alert_id}")
    for code in ("140411", "140402"):
        assert re.search(rf'data-code="{code}"\s+data-targeted=""\s+data-reached=""\s+data-suppressed="true"', html)
    assert ">已隐藏</text>" in html and ">2/2 · 100.0%</text>" not in html and ">6/6 · 100.0%</text>" not in html
    exported = await page(admin, f"/admin/alerts/{alert_id}/export.csv?table=regions")
    rows = list(csv.DictReader(io.StringIO(exported.removeprefix("\ufeff"))))
    assert {(r["region"], r["targeted"], r["suppressed"]) for r in rows} == {("140411", "", "true"),
                                                                            ("140402", "", "true")}


async def test_admin_sees_every_district(admin: Api, receiver: RunningReceiver) -> None:
    """The same alert for an admin: 城区 6/6 and 郊区 2/2."""
    alert_id = await delivered_alert(admin, receiver)
    await sign_in(admin)
    html = await page(admin, f"/admin/alerts/{alert_id}")
    assert ">2/2 · 100.0%</text>" in html and ">6/6 · 100.0%</text>" in html


async def test_contacts_are_masked_on_the_page_and_in_the_export(admin: Api) -> None:
    """The deliveries table and its CSV show 138****5678 and z***@example.org, never the raw contacts."""
    await admin.subscriber()
    _, accepted = await admin.publish(policy="all")
    await sign_in(admin)
    html = await page(admin, f"/admin/alerts/{accepted['id']}")
    exported = await page(admin, f"/admin/alerts/{accepted['id']}/export.csv?table=deliveries")
    for text in (html, exported):
        assert MOBILE_DIGITS not in text and MOBILE not in text and EMAIL not in text
        assert "138****5678" in text and "z***@example.org" in text


@pytest.mark.parametrize(("lang", "words"), [("zh-CN", "该渠道未配置（配置文件缺少 [channels.sms]），未能发送"),
                                           ("en", "this channel is not configured ([channels.sms] is missing)")])
async def test_failed_deliveries_show_their_cause_in_words_beside_the_raw_code(admin: Api, lang: str,
                                                                             words: str) -> None:
    """SMS not configured: the alert page and its failures CSV name the cause in the page's language (the same
    words as `notifier coverage`), with the raw text beside it."""
    await admin.subscriber()
    _, accepted = await admin.publish(policy="all")
    await admin.service.dispatcher.drain(timeout=10)
    await sign_in(admin)
    html = await page(admin, f"/admin/alerts/{accepted['id']}?lang={lang}")
    row = re.search(r'<tr data-cause="not_configured">.*?</tr>', html, re.S)
    assert row and words in row.group(0) and "<code>channel sms is not configured</code>" in row.group(0)
    exported = await page(admin, f"/admin/alerts/{accepted['id']}/export.csv?table=failures&lang={lang}")
    [failure] = [r for r in csv.DictReader(io.StringIO(exported.removeprefix("\ufeff")))
                 if r["kind"] == "delivery_error"]
    assert (failure["code"], failure["channel"], failure["count"]) == ("not_configured", "sms", "1")
    assert words in failure["label"] and failure["raw"] == "channel sms is not configured"


async def test_deliveries_filter_by_status_and_channel(admin: Api) -> None:
    """?status=skipped&channel=email narrows the deliveries table to the one skipped email fallback."""
    await admin.subscriber()
    _, accepted = await admin.publish(policy="fallback")
    await sign_in(admin)
    html = await page(admin, f"/admin/alerts/{accepted['id']}?status=skipped&channel=email")
    table = re.search(r'<table id="table-deliveries">.*?</table>', html, re.S)
    assert table and table.group(0).count("<tr data-delivery=") == 1
    assert '<option value="skipped" selected>' in html and '<option value="email" selected>' in html


async def test_cells_csv_has_a_bom_and_the_api_figures(admin: Api, receiver: RunningReceiver) -> None:
    """export.csv is UTF-8 with a BOM, and its region × group rows are the API's cells."""
    alert_id = await delivered_alert(admin, receiver)
    await sign_in(admin)
    response = await admin.client.get(f"/admin/alerts/{alert_id}/export.csv")
    assert response.status == 200 and response.content_type == "text/csv"
    assert "attachment" in response.headers["Content-Disposition"]
    raw = await response.read()
    assert raw.startswith(b"\xef\xbb\xbf")
    rows = list(csv.DictReader(io.StringIO(raw.decode("utf-8-sig"))))
    cells = (await api_coverage(admin, alert_id))["cells"]
    assert [(r["region"], r["group"] or None, int(r["targeted"]), int(r["reached"])) for r in rows] == [
        (c["region"], c["group"], c["targeted"], c["reached"]) for c in cells]
    assert rows[0]["region_name"] in {"城区", "郊区"}


async def test_csv_cells_that_look_like_formulas_are_defused(admin: Api) -> None:
    """A provider error text starting with = is exported with a leading quote, so a spreadsheet shows it as text."""
    from notifier.web.admin.exports import csv_text

    text = csv_text(["a"], [["=HYPERLINK(\"x\")"], ["-1"], [3]])
    assert "'=HYPERLINK" in text and "'-1" in text and "\r\n3\r\n" in text


async def test_english_is_one_click_away_and_remembered(admin: Api) -> None:
    """?lang=en renders English and sets a cookie, so the next page is English without the parameter."""
    await sign_in(admin)
    response = await admin.client.get("/admin?lang=en")
    assert '<html lang="en">' in await response.text() and "Recent disclosures" in await response.text()
    assert "HttpOnly" in set_cookies(response)[LANG_COOKIE]
    assert "Recent disclosures" in await page(admin, "/admin")


async def test_static_files_are_served_and_unknown_ones_are_404(admin: Api) -> None:
    """The stylesheet and script are served from the package without a session; other names are 404."""
    css = await admin.client.get("/admin/static/admin.css")
    assert css.status == 200 and css.content_type == "text/css"
    again = await admin.client.get("/admin/static/admin.css", headers={"If-None-Match": css.headers["ETag"]})
    assert again.status == 304
    assert (await admin.client.get("/admin/static/admin.js")).content_type == "text/javascript"
    assert (await admin.client.get("/admin/static/..%2Fadmin.py")).status == 404


# ---------------------------------------------------------------- parts


async def test_sessions_expire_when_idle_or_old_and_are_bounded(admin: Api) -> None:
    """A session unused for longer than the idle time is gone, so is one older than its lifetime however busy;
    beyond the bound the oldest sign-in goes first."""
    start = time.time()
    now = [start]
    sessions = SessionStore(idle_seconds=10, lifetime_seconds=100, max_sessions=2, clock=lambda: now[0],
                            seen_precision=0)
    store, secret = admin.service.store, admin.service.secret
    first, _ = await sessions.create(store, secret, "h1", "k1", Role.ADMIN)
    now[0] = start + 5
    assert await sessions.get(store, secret, first) is not None
    now[0] = start + 14
    assert await sessions.get(store, secret, first) is not None  # touched at 5: idle for 9 s only
    now[0] = start + 30
    assert await sessions.get(store, secret, first) is None
    busy, _ = await sessions.create(store, secret, "h1", "k1", Role.ADMIN)
    for second in range(35, 145, 5):  # used every 5 s: alive until it is 100 s old
        now[0] = start + second
        alive = await sessions.get(store, secret, busy)
        assert (alive is not None) == (second - 30 < 100), second
    a, _ = await sessions.create(store, secret, "h1", "k1", Role.ADMIN)
    now[0] += 1
    b, _ = await sessions.create(store, secret, "h2", "k2", Role.VIEWER)
    now[0] += 1
    c, _ = await sessions.create(store, secret, "h3", "k3", Role.VIEWER)
    assert await sessions.get(store, secret, a) is None
    assert await sessions.get(store, secret, b) and await sessions.get(store, secret, c)


def test_cookie_header_parses() -> None:
    """(helper check) a Set-Cookie header with the session flags parses with the standard library."""
    parsed = SimpleCookie()
    parsed.load(f"{SESSION_COOKIE}=abc; HttpOnly; Path=/admin; SameSite=Strict")
    assert parsed[SESSION_COOKIE]["path"] == "/admin"
