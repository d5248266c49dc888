"""Citizen sign-up (/subscribe) over real HTTP on loopback, with the Aliyun SMS fake, the fake SMTP server and the
WeChat fake: nothing is sent to a sign-up before a contact is verified; codes, links and follows verify; the form
is CSRF-protected, needs consent, and cannot be used to pump SMS."""

from __future__ import annotations

import json
import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import pytest
from aiohttp import ClientResponse
from aiohttp.test_utils import TestClient, TestServer

from notifier.fakes.aliyun_sms import RunningAliyunSms, SentRecord, start_aliyun_sms
from notifier.fakes.smtp import RunningSmtp
from notifier.fakes.wechat import RunningWechat, start_wechat
from notifier.models import AlertIn
from notifier.publish import publish_alert
from notifier.service import Service
from notifier.store.records import SubscriberRecord
from notifier.verification import CONSENT_VERSION
from notifier.web import create_app
from tests.conftest import SettingsFactory, settle

pytestmark = pytest.mark.both_backends  # SQLite and PostgreSQL (tests/conftest.py)

MOBILE = "13812340001"
E164 = "+86" + MOBILE
EMAIL = "li.na@example.org"
OPENID = "oSubscribeBindTest0000000001"
VERIFY_TEMPLATE = "SMS_900001"
WECHAT_TOKEN = "callback-token"
CSRF = re.compile(r'name="csrf" value="([^"]+)"')
REF = re.compile(r'name="ref" value="([^"]+)"')


@dataclass
class Citizen:
    """The served app with SMS (Aliyun fake), email (fake SMTP) and WeChat (fake) configured, and a browser-like
    client (it keeps cookies)."""

    client: TestClient[Any, Any]
    service: Service
    sms: RunningAliyunSms
    smtp: RunningSmtp
    wechat: RunningWechat

    async def form(self, path: str = "/subscribe") -> str:
        """GET a page and return its CSRF field (the cookie is kept by the client)."""
        response = await self.client.get(path)
        assert response.status == 200, await response.text()
        match = CSRF.search(await response.text())
        assert match is not None
        return match.group(1)

    async def subscribe(self, *, with_csrf: bool = True, **fields: Any) -> ClientResponse:
        """Submit the form; defaults: one topic in 城区, SMS to MOBILE, consent given."""
        data: list[tuple[str, str]] = [("csrf", await self.form())] if with_csrf else []
        base: dict[str, Any] = {"topic": ["env.heavy-pollution"], "region": "140402", "group": ["elderly"],
                                "channel": ["sms"], "mobile": MOBILE, "locale": "zh-CN", "consent": CONSENT_VERSION}
        base.update(fields)
        for name, value in base.items():
            for one in value if isinstance(value, list) else [value]:
                if one is not None:
                    data.append((name, one))
        return await self.client.post("/subscribe", data=data)

    def codes(self) -> list[str]:
        """The codes the SMS fake received in verification requests, oldest first."""
        return [r.params["code"] for r in self.verification_sms()]

    def verification_sms(self) -> list[SentRecord]:
        return [r for r in self.sms.sent if r.template_code == VERIFY_TEMPLATE]

    async def subscribers(self) -> list[SubscriberRecord]:
        records, _ = await self.service.store.list_subscribers(100, None)
        return records


@asynccontextmanager
async def open_citizen(make_settings: SettingsFactory, smtp: RunningSmtp, **overrides: Any) -> AsyncIterator[Citizen]:
    """The served app with SMS, email and WeChat fakes (`overrides`: more settings, e.g. `server`)."""
    sms = await start_aliyun_sms(access_key_id="ak", access_key_secret="sk")
    wechat = await start_wechat(app_id="wx-test", app_secret="secret", token=WECHAT_TOKEN)
    settings = make_settings(channels={
        "sms": {"provider": "aliyun", "endpoint": sms.url, "sign_name": "长治市人民政府", "template_code": "SMS_100001",
                "verification_template_code": VERIFY_TEMPLATE, "receipt_token": "receipt-token-0000000001",
                "access_key_id": "ak", "access_key_secret": "sk"},
        "email": {"host": smtp.host, "port": smtp.port, "tls": "none", "sender": "notify@changzhi.gov.cn"},
        "wechat": {"endpoint": wechat.url, "app_id": "wx-test", "app_secret": "secret", "token": WECHAT_TOKEN,
                   "template_id": "TPL-1"}}, **overrides)
    service = Service(settings)
    await service.open()
    client: TestClient[Any, Any] = TestClient(TestServer(create_app(settings, service=service), host="127.0.0.1"))
    await client.start_server()
    wechat.callback_url = str(client.make_url("/v1/wechat/callback"))
    try:
        yield Citizen(client, service, sms, smtp, wechat)
    finally:
        await client.close()
        await service.close()
        await wechat.stop()
        await sms.stop()


@pytest.fixture
async def citizen(make_settings: SettingsFactory, smtp: RunningSmtp) -> AsyncIterator[Citizen]:
    async with open_citizen(make_settings, smtp) as running:
        yield running


def _ref(page: str) -> str:
    match = REF.search(page)
    assert match is not None
    return match.group(1)


async def _verify(citizen: Citizen, ref: str, code: str) -> ClientResponse:
    return await citizen.client.post("/subscribe/verify", data={"csrf": await citizen.form(), "ref": ref,
                                                                "code": code})


# ---------------------------------------------------------------- the form


async def test_form_lists_topics_by_domain_every_district_and_the_consent_text(citizen: Citizen) -> None:
    """The form groups topics under the seed's domains, offers the 13 districts and shows the versioned consent."""
    response = await citizen.client.get("/subscribe")
    page = await response.text()
    assert response.status == 200 and response.content_type == "text/html"
    assert "环境保护" in page and 'value="env.heavy-pollution"' in page
    assert len(re.findall(r'<option value="1404\d\d"', page)) == 13
    assert CONSENT_VERSION in page and 'name="consent"' in page and 'name="csrf"' in page
    assert "default-src 'none'" in response.headers["Content-Security-Policy"]


async def test_form_speaks_english_with_lang_en(citizen: Citizen) -> None:
    """`?lang=en` shows the form and the consent text in English."""
    page = await (await citizen.client.get("/subscribe?lang=en")).text()
    assert '<html lang="en">' in page and "Environmental protection" in page and "What we collect" in page


async def test_missing_consent_is_refused_and_creates_nothing(citizen: Citizen) -> None:
    """Without the consent box the form comes back (422) with the reason; no subscriber, no SMS."""
    response = await citizen.subscribe(consent=None)
    assert response.status == 422
    assert "请阅读并勾选同意" in await response.text()
    assert await citizen.subscribers() == [] and citizen.sms.sent == []


async def test_missing_csrf_field_is_forbidden_and_creates_nothing(citizen: Citizen) -> None:
    """A POST without the form's CSRF field gets 403; no subscriber, no SMS."""
    await citizen.form()  # the browser has the cookie, but the forged form lacks the field
    response = await citizen.subscribe(with_csrf=False)
    assert response.status == 403
    assert await citizen.subscribers() == [] and citizen.sms.sent == []


async def test_invalid_mobile_is_shown_without_creating_anything(citizen: Citizen) -> None:
    """A number that is not a mainland mobile is named as the problem (422), and nothing is created."""
    response = await citizen.subscribe(mobile="12345")
    assert response.status == 422
    assert 'id="mobile-error"' in await response.text()
    assert await citizen.subscribers() == []


# ---------------------------------------------------------------- SMS


async def test_code_from_the_sms_gateway_activates_and_the_next_alert_arrives(citizen: Citizen) -> None:
    """Sign up → the gateway gets a 6-digit code → entering it activates the subscriber → an alert reaches them."""
    response = await citizen.subscribe()
    assert response.status == 200, await response.text()
    [record] = await citizen.subscribers()
    assert record.status == "pending" and record.consent_source == "web"
    [sent] = citizen.verification_sms()
    assert sent.numbers == (MOBILE,) and re.fullmatch(r"\d{6}", sent.params["code"])
    done = await _verify(citizen, _ref(await response.text()), sent.params["code"])
    manage = re.search(r'href="(/manage/[^"]+)"', await done.text())
    assert done.status == 200 and manage is not None
    assert (await citizen.client.get(manage.group(1))).status == 200
    assert (await citizen.service.store.get_subscriber(record.id)).status == "active"  # type: ignore[union-attr]
    alert, _ = await publish_alert(citizen.service.store, AlertIn(topic="env.heavy-pollution", headline="预警"), None)
    await settle(citizen.service)
    assert alert.targeted == 1
    assert [r.numbers for r in citizen.sms.sent if r.template_code != VERIFY_TEMPLATE] == [(MOBILE,)]


async def test_an_unverified_sign_up_receives_no_alert(citizen: Citizen) -> None:
    """Before the code is entered the subscriber is not targeted at all."""
    await citizen.subscribe()
    alert, _ = await publish_alert(citizen.service.store, AlertIn(topic="env.heavy-pollution", headline="预警"), None)
    assert alert.targeted == 0


async def test_five_wrong_codes_lock_the_code(citizen: Citizen) -> None:
    """After five wrong codes even the right one is refused and the subscriber stays pending."""
    ref = _ref(await (await citizen.subscribe()).text())
    [code] = citizen.codes()
    wrong = f"{(int(code) + 1) % 1_000_000:06d}"
    answers = [await _verify(citizen, ref, wrong) for _ in range(5)]
    assert [a.status for a in answers] == [422] * 5
    assert "错误次数过多" in await answers[-1].text()
    last = await _verify(citizen, ref, code)
    assert last.status == 422
    [record] = await citizen.subscribers()
    assert record.status == "pending"


async def test_a_second_code_within_a_minute_is_refused(citizen: Citizen) -> None:
    """The same number signing up again within a minute gets 429 with Retry-After; the gateway got one SMS."""
    assert (await citizen.subscribe()).status == 200
    again = await citizen.subscribe()
    assert again.status == 429
    assert 0 < int(again.headers["Retry-After"]) <= 60
    assert len(citizen.verification_sms()) == 1 and len(await citizen.subscribers()) == 1


async def test_resend_within_a_minute_is_refused(citizen: Citizen) -> None:
    """Asking for a new code right after the first is refused (429) and sends nothing."""
    ref = _ref(await (await citizen.subscribe()).text())
    response = await citizen.client.post("/subscribe/resend", data={"csrf": await citizen.form(), "ref": ref})
    assert response.status == 429 and "Retry-After" in response.headers
    assert len(citizen.verification_sms()) == 1


async def test_resend_from_a_client_whose_codes_are_used_up_is_refused(citizen: Citizen) -> None:
    """After five codes and links from one client, resend is refused too (429, the network named), no SMS goes
    out, and /metrics counts the refusal by its limit."""
    ref = _ref(await (await citizen.subscribe()).text())
    for i in range(4):
        assert (await citizen.subscribe(channel=["email"], mobile=None, email=f"n{i}@example.org")).status == 200
    response = await citizen.client.post("/subscribe/resend", data={"csrf": await citizen.form(), "ref": ref})
    assert response.status == 429 and "Retry-After" in response.headers
    assert "网络" in await response.text()
    assert len(citizen.verification_sms()) == 1
    metrics = await (await citizen.client.get("/metrics")).text()
    assert 'notifier_rate_limited_total{limit="verify-client"} 1.0' in metrics


async def test_a_forged_reference_is_refused(citizen: Citizen) -> None:
    """A code posted with a reference the server did not sign verifies nothing."""
    await citizen.subscribe()
    [code] = citizen.codes()
    response = await _verify(citizen, "forged.reference", code)
    assert response.status == 404
    [record] = await citizen.subscribers()
    assert record.status == "pending"


# ---------------------------------------------------------------- email


def _link(smtp: RunningSmtp) -> str:
    [mail] = smtp.messages_to(EMAIL)
    body = mail.message.get_body(("plain",))
    assert body is not None
    match = re.search(r"https?://\S+/subscribe/confirm/\S+", body.get_content())
    assert match is not None
    return match.group(0)


async def test_email_link_confirms_on_post_not_on_get(citizen: Citizen) -> None:
    """Opening the emailed link only shows a button; pressing it verifies the address and activates."""
    response = await citizen.subscribe(channel=["email"], mobile=None, email=EMAIL)
    assert response.status == 200, await response.text()
    path = "/subscribe/confirm/" + _link(citizen.smtp).rsplit("/subscribe/confirm/", 1)[1]
    csrf = await citizen.form(path)
    [record] = await citizen.subscribers()
    assert record.status == "pending"
    done = await citizen.client.post(path, data={"csrf": csrf})
    assert done.status == 200 and "/manage/" in await done.text()
    assert (await citizen.service.store.contact_states(record.id))["email"] is not None
    assert (await citizen.service.store.get_subscriber(record.id)).status == "active"  # type: ignore[union-attr]


async def test_a_tampered_email_link_is_not_found(citizen: Citizen) -> None:
    """A confirmation link whose token was altered shows the invalid-link page (404)."""
    await citizen.subscribe(channel=["email"], mobile=None, email=EMAIL)
    link = _link(citizen.smtp)
    path = "/subscribe/confirm/" + link.rsplit("/subscribe/confirm/", 1)[1][:-2] + "AA"
    response = await citizen.client.get(path)
    assert response.status == 404


# ---------------------------------------------------------------- WeChat


async def test_following_with_the_scene_binds_wechat(citizen: Citizen) -> None:
    """Following the official account through the sign-up's scene makes the openid a verified WeChat contact."""
    page = await (await citizen.subscribe(channel=["wechat", "sms"])).text()
    match = re.search(r'<p class="scene">(sub_[A-Za-z0-9_-]+)</p>', page)
    assert match is not None
    status = await citizen.wechat.push_event(OPENID, "subscribe", event_key="qrscene_" + match.group(1))
    assert status == 200
    [record] = await citizen.subscribers()
    assert record.status == "active" and record.contacts["wechat"] == OPENID
    assert record.subscriptions == [("env.heavy-pollution", ["wechat", "sms"], 0)]
    assert (await citizen.service.store.contact_states(record.id))["sms"] is None


async def test_a_follow_with_an_unknown_scene_binds_nothing(citizen: Citizen) -> None:
    """A follow event whose scene no sign-up issued changes no subscriber."""
    await citizen.subscribe(channel=["wechat", "sms"])
    assert await citizen.wechat.push_event(OPENID, "subscribe", event_key="qrscene_sub_notissued") == 200
    [record] = await citizen.subscribers()
    assert record.status == "pending" and "wechat" not in record.contacts


async def test_the_subscribe_pages_are_in_the_api_document(citizen: Citizen) -> None:
    """/openapi.json lists the sign-up pages."""
    doc = json.loads(await (await citizen.client.get("/openapi.json")).text())
    assert {"get", "post"} <= set(doc["paths"]["/subscribe"])
    assert "post" in doc["paths"]["/subscribe/verify"]
    assert {"get", "post"} <= set(doc["paths"]["/subscribe/confirm/{token}"])

