"""Delivery engine behaviour: fallback, retries, quiet hours, cancel, expiry, leases, literal publisher text."""

from __future__ import annotations

import json
import time
from datetime import datetime, timedelta
from typing import Any

import pytest

from notifier.coverage import alert_coverage
from notifier.dispatch import Dispatcher, plain_message
from notifier.fakes.smtp import RunningSmtp
from notifier.fakes.webhook_receiver import Reply, RunningReceiver
from notifier.models import AlertIn, Topic
from notifier.publish import alert_view, cancel_alert, publish_alert
from notifier.service import Service
from notifier.states import DeliveryStatus
from notifier.store.records import DeliveryUpdate
from notifier.subscribers import create_subscriber
from subscriptions.models import SubscriberIn
from subscriptions.quiet_hours import CITY_TZ
from tests.conftest import SubscriberFactory, settle

pytestmark = pytest.mark.both_backends  # SQLite and PostgreSQL (tests/conftest.py)


async def _statuses(service: Service, alert_id: str) -> dict[str, str]:
    rows, _ = await service.store.list_deliveries(alert_id, 1000, None)
    return {r.channel: r.status for r in rows}


def _alert(**fields: object) -> AlertIn:
    body: dict[str, object] = {"topic": "env.heavy-pollution", "headline": "重污染天气黄色预警", "severity": "moderate"}
    return AlertIn.model_validate({**body, **fields})


async def test_fallback_sends_the_next_channel_after_a_permanent_failure(
        service: Service, make_subscriber: SubscriberFactory, receiver: RunningReceiver, smtp: RunningSmtp) -> None:
    """A dead mailbox makes the alert go out on the subscriber's next channel, the webhook."""
    smtp.script("gone@example.org", then=550)
    await make_subscriber(contacts={"email": "gone@example.org", "webhook": receiver.url_for("/fb")},
                          channels=["email", "webhook"])
    alert, _ = await publish_alert(service.store, _alert(policy="fallback"), None)
    await settle(service)
    assert await _statuses(service, alert.id) == {"email": "failed", "webhook": "delivered"}
    assert len(receiver.requests_to("/fb")) == 1


async def test_fallback_channel_is_skipped_when_the_first_succeeds(
        service: Service, make_subscriber: SubscriberFactory, receiver: RunningReceiver, smtp: RunningSmtp) -> None:
    """When the email is accepted the webhook is never called and shows as skipped."""
    await make_subscriber(contacts={"email": "ok@example.org", "webhook": receiver.url_for("/skip")},
                          channels=["email", "webhook"])
    alert, _ = await publish_alert(service.store, _alert(policy="fallback"), None)
    await settle(service)
    assert await _statuses(service, alert.id) == {"email": "delivered", "webhook": "skipped"}
    assert receiver.requests_to("/skip") == []
    coverage = await alert_coverage(service.store, alert.id)
    assert coverage.by_channel["webhook"].attempted == 0 and coverage.by_channel["webhook"].failed == 0


async def test_policy_all_sends_every_channel(
        service: Service, make_subscriber: SubscriberFactory, receiver: RunningReceiver, smtp: RunningSmtp) -> None:
    """A severe alert goes out on every subscribed channel at once."""
    await make_subscriber(contacts={"email": "both@example.org", "webhook": receiver.url_for("/all")})
    alert, _ = await publish_alert(service.store, _alert(severity="severe"), None)
    assert alert.policy == "all"
    await settle(service)
    assert await _statuses(service, alert.id) == {"email": "delivered", "webhook": "delivered"}


async def test_transient_failures_are_retried_until_accepted(
        service: Service, make_subscriber: SubscriberFactory, receiver: RunningReceiver) -> None:
    """Two 503 answers are retried; the third attempt is delivered, with the same webhook-id each time."""
    receiver.script("/flaky", [503, 503])
    await make_subscriber(contacts={"webhook": receiver.url_for("/flaky")})
    alert, _ = await publish_alert(service.store, _alert(), None)
    await settle(service)
    rows, _ = await service.store.list_deliveries(alert.id, 10, None)
    assert (rows[0].status, rows[0].attempts) == ("delivered", 3)
    assert {r.webhook_id for r in receiver.requests_to("/flaky")} == {rows[0].id}


async def test_retries_are_bounded_and_then_fall_back(
        service: Service, make_subscriber: SubscriberFactory, receiver: RunningReceiver, smtp: RunningSmtp) -> None:
    """A webhook that never recovers fails after the attempt bound, and the email fallback goes out."""
    receiver.script("/down", [503] * 50)
    await make_subscriber(contacts={"webhook": receiver.url_for("/down"), "email": "next@example.org"},
                          channels=["webhook", "email"])
    alert, _ = await publish_alert(service.store, _alert(policy="fallback"), None)
    await settle(service)
    rows = {r.channel: r for r in (await service.store.list_deliveries(alert.id, 10, None))[0]}
    assert rows["webhook"].status == "failed"
    assert rows["webhook"].attempts == service.settings.worker.max_attempts
    assert "gave up" in (rows["webhook"].last_error or "")
    assert rows["email"].status == "delivered"


async def test_an_endpoints_cookie_is_never_sent_to_any_endpoint(
        service: Service, make_subscriber: SubscriberFactory, receiver: RunningReceiver) -> None:
    """Two organisations' endpoints on one host (a webhook relay, say): the first answers with a cookie. Neither the
    other organisation nor the first itself ever gets it back — the service's HTTP session keeps no cookies, so no
    endpoint learns another's and none tracks its alerts by them."""
    host = receiver.url_for("/").replace("127.0.0.1", "localhost")  # a host name: cookies for an IP are refused
    receiver.script("/org-a", [Reply(headers={"Set-Cookie": "relay-session=org-a-secret; Path=/"})] * 2)
    for path in ("org-a", "org-b"):
        await make_subscriber(contacts={"webhook": host + path})
    for _ in range(2):
        await publish_alert(service.store, _alert(), None)
        await settle(service)

    received = receiver.requests_to("/org-a") + receiver.requests_to("/org-b")
    assert len(received) == 4
    assert [r.cookie for r in received] == [None] * 4


async def test_retry_after_is_honoured(
        service: Service, make_subscriber: SubscriberFactory, receiver: RunningReceiver) -> None:
    """A 429 asking to wait 30 s schedules the next attempt no sooner than that."""
    receiver.script("/busy", [Reply(status=429, headers={"Retry-After": "30"})])
    await make_subscriber(contacts={"webhook": receiver.url_for("/busy")})
    alert, _ = await publish_alert(service.store, _alert(), None)
    before = time.time()
    await service.dispatcher.run_once()
    rows, _ = await service.store.list_deliveries(alert.id, 10, None)
    assert rows[0].status == "queued" and rows[0].attempts == 1
    assert rows[0].next_attempt_at is not None and rows[0].next_attempt_at >= before + 30


def _quiet_now() -> dict[str, str]:
    now = datetime.now(CITY_TZ)
    start, end = now - timedelta(hours=1), now + timedelta(hours=1)
    return {"start": start.strftime("%H:%M"), "end": end.strftime("%H:%M")}


async def test_quiet_hours_defer_routine_alerts(
        service: Service, make_subscriber: SubscriberFactory, receiver: RunningReceiver) -> None:
    """Inside the subscriber's quiet hours a routine alert waits until the window ends."""
    await make_subscriber(contacts={"webhook": receiver.url_for("/night")}, quiet_hours=_quiet_now())
    alert, _ = await publish_alert(service.store, _alert(), None)
    await service.dispatcher.run_once()
    rows, _ = await service.store.list_deliveries(alert.id, 10, None)
    assert rows[0].status == "deferred" and rows[0].attempts == 0
    assert rows[0].next_attempt_at is not None and rows[0].next_attempt_at > time.time() + 3000
    assert receiver.requests_to("/night") == []


async def test_quiet_hours_do_not_hold_an_immediate_alert(
        service: Service, make_subscriber: SubscriberFactory, receiver: RunningReceiver) -> None:
    """An immediate alert goes out at once, quiet hours or not."""
    await make_subscriber(contacts={"webhook": receiver.url_for("/urgent")}, quiet_hours=_quiet_now())
    alert, _ = await publish_alert(service.store, _alert(urgency="immediate"), None)
    await settle(service)
    assert await _statuses(service, alert.id) == {"webhook": "delivered"}


async def test_cancel_stops_pending_deliveries_and_notifies_those_reached(
        service: Service, make_subscriber: SubscriberFactory, receiver: RunningReceiver) -> None:
    """Cancelling stops what has not gone out; who already got the alert receives the cancellation."""
    await make_subscriber(contacts={"webhook": receiver.url_for("/got-it")}, region="140402")
    await make_subscriber(contacts={"webhook": receiver.url_for("/later")}, region="140411",
                          quiet_hours=_quiet_now())
    alert, _ = await publish_alert(service.store, _alert(), None)
    await settle(service)
    cancelled, stopped, notice = await cancel_alert(service.store, alert.id, None)
    assert cancelled.status == "cancelled" and stopped == 1
    rows, _ = await service.store.list_deliveries(alert.id, 10, None)
    assert sorted(r.status for r in rows) == ["cancelled", "delivered"]
    assert notice is not None and notice.targeted == 1
    await settle(service)
    bodies = [json.loads(r.body) for r in receiver.requests_to("/got-it")]
    assert [b["type"] for b in bodies] == ["alert.alert", "alert.cancel"]
    assert receiver.requests_to("/later") == []


async def test_expired_alert_stops_its_pending_deliveries(
        service: Service, make_subscriber: SubscriberFactory, receiver: RunningReceiver) -> None:
    """Deliveries still waiting when the alert expires become expired and are never sent."""
    await make_subscriber(contacts={"webhook": receiver.url_for("/late")}, quiet_hours=_quiet_now())
    expires = datetime.now(CITY_TZ) + timedelta(minutes=5)
    alert, _ = await publish_alert(service.store, _alert(expires_at=expires.isoformat()), None)
    await service.dispatcher.run_once()
    swept = await service.store.sweep(expires.timestamp() + 1)
    assert swept["expired"] == 1
    assert await _statuses(service, alert.id) == {"webhook": "expired"}
    assert (await service.store.get_alert(alert.id)).status == "expired"  # type: ignore[union-attr]


async def test_scheduled_alert_waits_for_its_time(
        service: Service, make_subscriber: SubscriberFactory, receiver: RunningReceiver) -> None:
    """An alert scheduled for later is stored now and sent only when its time comes: nothing a second before, the
    one delivery once a worker's clock reaches it."""
    await make_subscriber(contacts={"webhook": receiver.url_for("/sched")})
    later = (datetime.now(CITY_TZ) + timedelta(hours=1)).replace(microsecond=0)
    scheduled, _ = await publish_alert(service.store, _alert(scheduled_at=later.isoformat()), None)
    assert scheduled.status == "scheduled"
    assert await service.dispatcher.run_once() == 0

    def worker_at(moment: float) -> Dispatcher:
        return Dispatcher(service.store, service.channels, service.renderer, service.settings.worker,
                          clock=lambda: moment)

    assert await worker_at(later.timestamp() - 1).run_once() == 0
    assert receiver.requests_to("/sched") == []
    assert (await service.store.get_alert(scheduled.id)).status == "scheduled"  # type: ignore[union-attr]
    assert await worker_at(later.timestamp() + 1).run_once() == 1
    assert (await service.store.get_alert(scheduled.id)).status == "active"  # type: ignore[union-attr]
    [sent] = receiver.requests_to("/sched")
    assert json.loads(sent.body)["alert_id"] == scheduled.id


async def test_a_dead_workers_lease_is_reclaimed_and_its_late_result_refused(
        service: Service, make_subscriber: SubscriberFactory, receiver: RunningReceiver) -> None:
    """A claim whose worker vanished is sent again by another; the first worker's late write changes nothing."""
    await make_subscriber(contacts={"webhook": receiver.url_for("/lease")})
    alert, _ = await publish_alert(service.store, _alert(), None)
    now = time.time()
    claimed = await service.store.claim("dead-worker", now, now - 1, 10)  # a lease that has already run out
    assert len(claimed) == 1
    swept = await service.store.sweep(time.time())
    assert swept["reclaimed"] == 1
    await settle(service)
    late_result = DeliveryUpdate(claimed[0].id, alert.id, DeliveryStatus.FAILED, time.time(), error="late")
    late = (await service.store.record("dead-worker", [late_result], time.time())).written
    assert late == []
    rows, _ = await service.store.list_deliveries(alert.id, 10, None)
    assert (rows[0].status, rows[0].attempts) == ("delivered", 2)


async def test_publisher_text_is_delivered_literally(
        service: Service, make_subscriber: SubscriberFactory, receiver: RunningReceiver, smtp: RunningSmtp) -> None:
    """Template syntax in an alert is data: `{{ 7*7 }}` arrives as written and `<b>` is escaped in HTML."""
    await make_subscriber(contacts={"webhook": receiver.url_for("/lit"), "email": "lit@example.org"})
    await publish_alert(service.store, _alert(
        severity="severe", headline="{{ 7*7 }} 预警", body="<b>注意</b> {% if true %}x{% endif %}"), None)
    await settle(service)
    payload = json.loads(receiver.requests_to("/lit")[0].body)
    assert "{{ 7*7 }}" in payload["headline"] and "49" not in payload["headline"]
    mail = smtp.messages_to("lit@example.org")[0].message
    html = next(p for p in mail.walk() if p.get_content_type() == "text/html").get_content()
    text = next(p for p in mail.walk() if p.get_content_type() == "text/plain").get_content()
    assert "{{ 7*7 }}" in text and "{% if true %}" in text
    assert "&lt;b&gt;" in html and "<b>注意</b>" not in html


async def test_a_gone_webhook_is_disabled_for_later_alerts(
        service: Service, make_subscriber: SubscriberFactory, receiver: RunningReceiver) -> None:
    """A 410 answer disables the endpoint: the next alert creates no delivery to it."""
    receiver.script("/retired", [Reply(status=410)])
    await make_subscriber(contacts={"webhook": receiver.url_for("/retired")})
    first, _ = await publish_alert(service.store, _alert(), None)
    await settle(service)
    assert await _statuses(service, first.id) == {"webhook": "failed"}
    second, _ = await publish_alert(service.store, _alert(headline="第二次"), None)
    assert second.targeted == 1
    assert await _statuses(service, second.id) == {}
    assert (await alert_coverage(service.store, second.id)).unreachable == {"no_contact": 1}


async def test_the_plain_text_of_a_voice_call_is_written_for_the_ear(service: Service) -> None:
    """When a voice template cannot be rendered, the publisher's words are read out without the link, with
    numbers and abbreviations in words."""
    alert, _ = await publish_alert(service.store, AlertIn(topic="env.heavy-pollution", headline="PM2.5 超过 150",
                                                          body="请关注 https://x.cn/a", instruction="减少外出"), None)
    topic = Topic.model_validate(await service.store.get_topic("env.heavy-pollution"))
    message = plain_message(alert_view(alert), topic, "zh-CN", "https://notify.example/disclosures/a", "voice")
    assert "http" not in message.text and "PM2.5" not in message.text and "150" not in message.text
    assert message.text.startswith(f"{topic.department}。细颗粒物") and "一百五十" in message.text


async def test_a_fan_out_taking_whole_batches_is_sending_and_a_small_alert_is_not(
        make_settings: Any, receiver: RunningReceiver) -> None:
    """With claims of two, a warning to four people is taken in whole batches: right after, the process is sending
    (its delivery reports wait, `report_applier.py`); a warning to one person never makes it so."""
    async with Service(make_settings(worker={"claim_batch": 2})) as service:
        for n in range(5):
            await create_subscriber(service.store, SubscriberIn.model_validate({
                "contacts": {"webhook": receiver.url_for(f"/p{n}")}, "region": "140402",
                "subscriptions": [{"topic": "env.heavy-pollution" if n < 4 else "transit.fare-change",
                                   "channels": ["webhook"]}]}),
                allow_private_webhooks=True)
        await publish_alert(service.store, _alert(topic="transit.fare-change", headline="票价调整"), None)
        await settle(service)
        assert not await service.dispatcher.sending()
        await publish_alert(service.store, _alert(), None)
        await settle(service)
        assert await service.dispatcher.sending()


async def test_a_fan_out_another_process_sends_is_sending_too(make_settings: Any, receiver: RunningReceiver) -> None:
    """A warning to four people waits for a worker in another process (a `notifier worker` beside `notifier serve`;
    claims of two): this process, which has claimed nothing, counts the sends under way — its delivery reports wait —
    as long as a claim's worth is due or leased; once they are sent, it does not."""
    async with Service(make_settings(worker={"claim_batch": 2})) as service:
        for n in range(4):
            await create_subscriber(service.store, SubscriberIn.model_validate({
                "contacts": {"webhook": receiver.url_for(f"/p{n}")}, "region": "140402",
                "subscriptions": [{"topic": "env.heavy-pollution", "channels": ["webhook"]}]}),
                allow_private_webhooks=True)
        assert not await service.dispatcher.sending()
        await publish_alert(service.store, _alert(), None)
        assert await service.dispatcher.sending()
        async with Service(make_settings(worker={"claim_batch": 8})) as other:  # the other process, on the same store
            await settle(other)
        assert not await service.dispatcher.sending()
