"""/manage without a link (SPEC "Citizens without a link") over real HTTP on loopback, with the Aliyun SMS fake
and the fake SMTP server: a subscribed number gets a code that opens its page, an address gets its link, an
unknown contact gets the same answer and nothing, and the verification limits hold across /subscribe, resend and
/manage together."""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator

import pytest
from aiohttp import ClientResponse

from notifier.fakes.smtp import RunningSmtp
from notifier.store.records import SubscriberRecord
from notifier.subscribers import create_subscriber
from subscriptions.models import SubscriberIn
from tests.conftest import SettingsFactory
from tests.web.test_subscribe import Citizen, open_citizen

pytestmark = pytest.mark.both_backends  # SQLite and PostgreSQL (tests/conftest.py)

KNOWN = "13812340077"
UNKNOWN = "13812340088"
KNOWN_EMAIL = "zhao.lei@example.org"
CSRF = re.compile(r'name="csrf" value="[^"]+"')


@pytest.fixture(name="citizen")
async def served(make_settings: SettingsFactory, smtp: RunningSmtp) -> AsyncIterator[Citizen]:
    async with open_citizen(make_settings, smtp) as running:
        yield running


async def _subscriber(citizen: Citizen, **contacts: str) -> SubscriberRecord:
    body = SubscriberIn.model_validate({"contacts": contacts, "region": "140402", "subscriptions": [
        {"topic": "env.heavy-pollution", "channels": list(contacts)}]})
    record, _ = await create_subscriber(citizen.service.store, body, allow_private_webhooks=False)
    return record


async def _ask(citizen: Citizen, contact: str, *, lang: str = "zh-CN") -> ClientResponse:
    return await citizen.client.post("/manage", data={"csrf": await citizen.form("/manage"), "contact": contact,
                                                      "lang": lang})


async def _codes_to(citizen: Citizen, number: str, count: int = 1) -> list[str]:
    """The codes the SMS gateway got for `number` (the send runs after the answer: wait for it)."""
    for _ in range(500):
        codes = [r.params["code"] for r in citizen.verification_sms() if r.numbers == (number,)]
        if len(codes) >= count:
            return codes
        await asyncio.sleep(0.01)
    raise AssertionError(f"no code reached the gateway for {number[:3]}****")


async def _mails_to(citizen: Citizen, address: str) -> list[str]:
    for _ in range(500):
        mails = citizen.smtp.messages_to(address)
        if mails:
            return [body.get_content() for m in mails if (body := m.message.get_body(("plain",))) is not None]
        await asyncio.sleep(0.01)
    raise AssertionError("no email reached the mail server")


async def _verify(citizen: Citizen, number: str, code: str) -> ClientResponse:
    return await citizen.client.post("/manage/verify", allow_redirects=False, data={
        "csrf": await citizen.form("/manage"), "contact": number, "code": code})


def _page(text: str) -> str:
    return CSRF.sub("", text)


async def test_the_page_asks_for_a_number_or_an_address(citizen: Citizen) -> None:
    """GET /manage asks, in Chinese first, for the mobile number or email address, with a CSRF field; ?lang=en
    asks in English."""
    response = await citizen.client.get("/manage")
    page = await response.text()
    assert response.status == 200 and '<html lang="zh-CN">' in page
    assert "手机号码或电子邮箱" in page and 'name="contact"' in page and 'name="csrf"' in page
    english = await (await citizen.client.get("/manage?lang=en")).text()
    assert "Mobile number or email address" in english


async def test_a_subscribed_number_gets_a_code_that_opens_its_page(citizen: Citizen) -> None:
    """A subscribed number gets a 6-digit code through the verification template; the number and code redirect
    to /manage/<token>, which is that subscriber's page. The code works once."""
    await _subscriber(citizen, sms="+86" + KNOWN)
    response = await _ask(citizen, KNOWN)
    assert response.status == 200 and "138****0077" in await response.text()
    [code] = await _codes_to(citizen, KNOWN)
    opened = await _verify(citizen, KNOWN, code)
    assert opened.status == 303 and opened.headers["Location"].startswith("/manage/")
    page = await citizen.client.get(opened.headers["Location"])
    assert page.status == 200 and "138****0077" in await page.text()
    again = await _verify(citizen, KNOWN, code)
    assert again.status == 422


async def test_an_unknown_number_gets_the_same_answer_and_nothing(citizen: Citizen) -> None:
    """A number nobody subscribed gets the same status and page (but for its own masked digits) and no SMS."""
    await _subscriber(citizen, sms="+86" + KNOWN)
    known = await _ask(citizen, KNOWN)
    unknown = await _ask(citizen, UNKNOWN)
    assert known.status == unknown.status == 200
    assert _page(await known.text()).replace("0077", "0088") == _page(await unknown.text())
    await _codes_to(citizen, KNOWN)
    assert [r for r in citizen.verification_sms() if r.numbers == (UNKNOWN,)] == []


async def test_a_wrong_code_and_an_unknown_number_are_answered_alike(citizen: Citizen) -> None:
    """A wrong code for a subscribed number and any code for an unknown one both get the code form again (422)
    with the same words."""
    await _subscriber(citizen, sms="+86" + KNOWN)
    await _ask(citizen, KNOWN)
    [code] = await _codes_to(citizen, KNOWN)
    wrong = await _verify(citizen, KNOWN, f"{(int(code) + 1) % 1_000_000:06d}")
    nobody = await _verify(citizen, UNKNOWN, code)
    assert wrong.status == nobody.status == 422
    assert _page(await wrong.text()).replace("0077", "0088") == _page(await nobody.text())


async def test_a_subscribed_address_gets_its_manage_link(citizen: Citizen) -> None:
    """A subscribed email address gets the manage link by email (in the page's language); an unknown one gets the
    same page and no mail."""
    await _subscriber(citizen, email=KNOWN_EMAIL)
    known = await _ask(citizen, KNOWN_EMAIL)
    unknown = await _ask(citizen, "nobody@example.org")
    assert known.status == unknown.status == 200
    assert _page(await known.text()).replace("z***@", "n***@") == _page(await unknown.text())
    [text] = await _mails_to(citizen, KNOWN_EMAIL)
    link = re.search(r"https?://[^/\s]+(/manage/\S+)", text)
    assert link is not None and "管理" in text
    page = await citizen.client.get(link.group(1))
    assert page.status == 200 and "z***@example.org" in await page.text()
    assert citizen.smtp.messages_to("nobody@example.org") == []


async def test_without_the_csrf_field_nothing_is_sent(citizen: Citizen) -> None:
    """A POST without the page's CSRF field is refused (403) and no code goes out."""
    await _subscriber(citizen, sms="+86" + KNOWN)
    await citizen.form("/manage")
    response = await citizen.client.post("/manage", data={"contact": KNOWN})
    assert response.status == 403 and citizen.verification_sms() == []


async def test_what_is_neither_a_number_nor_an_address_is_said(citizen: Citizen) -> None:
    """Text that is no mobile number or email address gets the form again (422) with the field marked."""
    response = await _ask(citizen, "12345")
    assert response.status == 422 and 'aria-invalid="true"' in await response.text()


async def test_a_known_and_an_unknown_number_meet_the_same_limit(citizen: Citizen) -> None:
    """Asking twice within a minute is refused (429) for a subscribed number and an unknown one alike."""
    await _subscriber(citizen, sms="+86" + KNOWN)
    for number in (KNOWN, UNKNOWN):
        assert (await _ask(citizen, number)).status == 200
        again = await _ask(citizen, number)
        assert again.status == 429 and "Retry-After" in again.headers


async def test_a_number_that_just_signed_up_gets_no_manage_code_within_the_minute(citizen: Citizen) -> None:
    """The per-number limit is one across sign-up and /manage: a code texted at sign-up leaves none for /manage
    within the minute."""
    assert (await citizen.subscribe(mobile=KNOWN)).status == 200
    refused = await _ask(citizen, KNOWN)
    assert refused.status == 429 and "每分钟1条" in await refused.text()


async def test_the_client_limit_counts_sign_ups_and_manage_requests_together(citizen: Citizen) -> None:
    """Three sign-ups and two /manage requests from one client use up its five an hour: the sixth — another
    /manage request, for an unknown number — is refused."""
    for i in range(3):
        assert (await citizen.subscribe(channel=["email"], mobile=None, email=f"s{i}@example.org")).status == 200
    for number in ("13812340101", "13812340102"):
        assert (await _ask(citizen, number)).status == 200
    refused = await _ask(citizen, "13812340103")
    assert refused.status == 429 and "网络" in await refused.text()
    assert 'href="/manage"' in await refused.text()


async def test_the_answer_does_not_wait_for_the_sms_gateway(citizen: Citizen) -> None:
    """With the gateway holding the code's request unanswered (8 s, under the channel's 10 s timeout), the page
    has already answered: its time cannot tell a subscribed number from an unknown one."""
    await _subscriber(citizen, sms="+86" + KNOWN)
    citizen.sms.gateway.hang_seconds = 8.0
    citizen.sms.script("+86" + KNOWN, "timeout")
    response = await _ask(citizen, KNOWN)
    assert response.status == 200
    assert citizen.sms.counts["refused:ServiceTimeout"] == 0  # the gateway has not answered yet
    for _ in range(500):
        if citizen.sms.counts["timeouts"]:
            break
        await asyncio.sleep(0.01)
    assert citizen.sms.counts["timeouts"] == 1  # the code's request did reach it, after the answer
    citizen.sms.gateway.answer_hung()  # seen: the service's shutdown need not wait out the 8 s


async def test_behind_a_trusted_proxy_each_forwarded_client_has_its_own_five(make_settings: SettingsFactory,
                                                                             smtp: RunningSmtp) -> None:
    """With the proxy trusted, the client limit counts the address X-Forwarded-For names: one citizen's five do
    not hold back the next citizen behind the same proxy."""
    async with open_citizen(make_settings, smtp, server={"trusted_proxies": ["127.0.0.1"]}) as behind:
        async def ask(number: str, forwarded_for: str) -> int:
            response = await behind.client.post("/manage", headers={"X-Forwarded-For": forwarded_for}, data={
                "csrf": await behind.form("/manage"), "contact": number})
            return response.status

        assert [await ask(f"1381234020{i}", "198.51.100.1") for i in range(6)] == [200] * 5 + [429]
        assert await ask("13812340209", "198.51.100.2") == 200
