"""Every message carries the subscriber's own links where the channel can: email (List-Unsubscribe, text and HTML)
and webhook (JSON fields) carry signed manage/unsubscribe links; SMS keeps to three segments, says
退订回TD and names the manage page."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from urllib.parse import urlsplit

import pytest

from notifier import tokens
from notifier.fakes.aliyun_sms import RunningAliyunSms, start_aliyun_sms
from notifier.fakes.smtp import RunningSmtp
from notifier.fakes.webhook_receiver import RunningReceiver
from notifier.models import AlertIn
from notifier.publish import publish_alert
from notifier.rendering import sms_segments
from notifier.service import Service
from notifier.subscribers import create_subscriber
from subscriptions.models import SubscriberIn
from tests.conftest import SettingsFactory, SubscriberFactory, settle

PUBLIC = "https://notify.changzhi.gov.cn"
TOPIC = "env.heavy-pollution"
SIGNATURE = "长治市人民政府"


@pytest.fixture
async def service(make_settings: SettingsFactory, smtp: RunningSmtp) -> AsyncIterator[Service]:
    """A service with a public URL, email to the fake SMTP server and webhooks to loopback."""
    settings = make_settings(server={"public_url": PUBLIC}, channels={"email": {
        "host": smtp.host, "port": smtp.port, "tls": "none", "sender": "长治市政务公开 <notify@changzhi.gov.cn>"}})
    async with Service(settings) as running:
        yield running


def _claims(service: Service, url: str, purpose: str) -> tokens.TokenClaims:
    parts = urlsplit(url)
    assert f"{parts.scheme}://{parts.netloc}" == PUBLIC
    prefix = f"/{'manage' if purpose == tokens.MANAGE else 'unsubscribe'}/"
    assert parts.path.startswith(prefix)
    return tokens.read_token(service.secret, purpose, parts.path.removeprefix(prefix))


async def _publish(service: Service, **fields: object) -> None:
    await publish_alert(service.store, AlertIn.model_validate(
        {"topic": TOPIC, "headline": "重污染天气橙色预警", "severity": "moderate", **fields}), None)
    await settle(service)


async def test_email_has_one_click_list_unsubscribe_with_a_working_token(
        service: Service, make_subscriber: SubscriberFactory, smtp: RunningSmtp) -> None:
    """The email's List-Unsubscribe names /unsubscribe/<token> for this subscriber and topic, with One-Click."""
    record = await make_subscriber(contacts={"email": "li.na@example.org"})
    await _publish(service)
    (mail,) = smtp.messages_to("li.na@example.org")
    header = str(mail.message["List-Unsubscribe"])
    assert header.startswith("<") and header.endswith(">")
    claims = _claims(service, header[1:-1], tokens.UNSUBSCRIBE)
    assert (claims.subject, claims.data) == (record.id, TOPIC)
    assert str(mail.message["List-Unsubscribe-Post"]) == "List-Unsubscribe=One-Click"


async def test_email_text_and_html_carry_manage_and_unsubscribe_links(
        service: Service, make_subscriber: SubscriberFactory, smtp: RunningSmtp) -> None:
    """Both parts of the email link to the subscriber's manage page and unsubscribe page; no placeholder is left."""
    record = await make_subscriber(contacts={"email": "li.na@example.org"})
    await _publish(service)
    (mail,) = smtp.messages_to("li.na@example.org")
    unsubscribe = str(mail.message["List-Unsubscribe"])[1:-1]
    for subtype in ("plain", "html"):
        part = mail.message.get_body(preferencelist=(subtype,))
        assert part is not None
        content = part.get_content()
        assert "{manage_url}" not in content and "{unsubscribe_url}" not in content
        assert unsubscribe in content
        manage = content[content.index(f"{PUBLIC}/manage/"):].split()[0].split('"')[0]
        assert _claims(service, manage, tokens.MANAGE).subject == record.id


async def test_webhook_body_carries_both_links(
        service: Service, make_subscriber: SubscriberFactory, receiver: RunningReceiver) -> None:
    """An organisation's webhook body has manage_url and unsubscribe_url for its own subscription."""
    record = await make_subscriber(contacts={"webhook": receiver.url_for("/org")})
    await _publish(service)
    (request,) = receiver.requests_to("/org")
    body = json.loads(request.body)
    assert _claims(service, body["manage_url"], tokens.MANAGE).subject == record.id
    claims = _claims(service, body["unsubscribe_url"], tokens.UNSUBSCRIBE)
    assert (claims.subject, claims.data) == (record.id, TOPIC)
    assert body["delivery_id"] == request.webhook_id


async def test_links_are_the_same_on_every_retry(
        service: Service, make_subscriber: SubscriberFactory, receiver: RunningReceiver) -> None:
    """A retried webhook sends the same links (tokens count from the alert's time, not the attempt's)."""
    receiver.script("/flaky", [503])
    await make_subscriber(contacts={"webhook": receiver.url_for("/flaky")})
    await _publish(service)
    first, second = (json.loads(r.body) for r in receiver.requests_to("/flaky"))
    assert (first["manage_url"], first["unsubscribe_url"]) == (second["manage_url"], second["unsubscribe_url"])


@pytest.fixture
async def sms_service(make_settings: SettingsFactory) -> AsyncIterator[tuple[Service, RunningAliyunSms]]:
    """A service sending SMS through the Aliyun fake."""
    fake = await start_aliyun_sms(access_key_id="ak", access_key_secret="sk")
    settings = make_settings(server={"public_url": PUBLIC}, channels={"sms": {
        "provider": "aliyun", "endpoint": fake.url, "sign_name": SIGNATURE, "template_code": "SMS_100001",
        "receipt_token": "receipt-token-0000001", "access_key_id": "ak", "access_key_secret": "sk"}})
    try:
        async with Service(settings) as running:
            yield running, fake
    finally:
        await fake.stop()


async def test_sms_keeps_to_three_segments_with_td_the_manage_page_and_no_personal_link(
        sms_service: tuple[Service, RunningAliyunSms]) -> None:
    """The zh-CN SMS stays within three segments, says 退订回TD, names the page where anyone gets back to their
    subscription (…/manage, no token), and carries no per-recipient link (one batch, one text for every number)."""
    service, fake = sms_service
    for n in (1, 2):
        body = SubscriberIn.model_validate({"contacts": {"sms": f"+861380000010{n}"}, "region": "140402",
                                            "subscriptions": [{"topic": TOPIC, "channels": ["sms"]}]})
        await create_subscriber(service.store, body, allow_private_webhooks=False)
    await _publish(service, instruction="儿童、老年人和呼吸道疾病患者尽量留在室内，一般人群减少户外活动。",
                   level="orange")
    (sent,) = fake.sent
    text = json.loads(sent.wire_params["TemplateParam"])["content"]
    assert len(sent.numbers) == 2
    assert "退订回TD" in text and text.endswith("管理订阅请访问" + service.settings.server.base_url() + "/manage")
    assert "/manage/" not in text and "/unsubscribe/" not in text
    assert sms_segments(text, SIGNATURE) <= 3
