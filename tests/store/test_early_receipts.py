"""A provider's report can overtake our own record of the send; it must still count."""

from __future__ import annotations

import time

import pytest

from channels.base import Receipt
from channels.voice.common import CallPolicy
from notifier.coverage import alert_coverage
from notifier.models import AlertIn
from notifier.publish import publish_alert
from notifier.service import Service
from notifier.states import DeliveryStatus
from notifier.store.records import DeliveryUpdate
from tests.conftest import SubscriberFactory
from tests.invariants import timestamp_violations

pytestmark = pytest.mark.both_backends  # SQLite and PostgreSQL (tests/conftest.py)


def _sent(delivery_id: str, alert_id: str, provider_message_id: str, address: str | None = None) -> DeliveryUpdate:
    return DeliveryUpdate(delivery_id, alert_id, DeliveryStatus.SENT, time.time(),
                          provider_message_id=provider_message_id, address=address)


async def _claim(service: Service, channel: str) -> tuple[str, list[tuple[str, str]]]:
    alert, _ = await publish_alert(service.store, AlertIn(topic="env.heavy-pollution", headline="预警",
                                                          severity="severe"), None)
    now = time.time()
    claimed = await service.store.claim("worker-1", now, now + 60, 100)
    return alert.id, [(d.id, d.address or "") for d in claimed if d.channel == channel]


async def test_a_receipt_before_the_send_is_recorded_is_applied_when_it_is(
        service: Service, make_subscriber: SubscriberFactory) -> None:
    """WeChat's success report arrives while the send is still being recorded; the subscriber counts as reached."""
    await make_subscriber(contacts={"wechat": "oEarly00000000000000000000ab"})
    alert_id, [(delivery_id, _)] = await _claim(service, "wechat")
    early = await service.store.apply_receipts("wechat", [Receipt("msg-1", True, "msg-1:success")], time.time())
    assert early["unknown"] == 1
    await service.store.record("worker-1", [_sent(delivery_id, alert_id, "msg-1")], time.time())
    coverage = await alert_coverage(service.store, alert_id)
    assert (coverage.reached, coverage.by_channel["wechat"].delivered) == (1, 1)
    assert await timestamp_violations(service.store, alert_id) == []  # never delivered before it was sent


async def test_early_reports_for_a_shared_batch_id_find_their_own_number(
        service: Service, make_subscriber: SubscriberFactory) -> None:
    """Two numbers sent under one Aliyun BizId: each early report settles only its own number's delivery."""
    await make_subscriber(contacts={"sms": "+8613800000101"})
    await make_subscriber(contacts={"sms": "+8613800000102"})
    alert_id, claimed = await _claim(service, "sms")
    by_phone = {phone: delivery_id for delivery_id, phone in claimed}
    reports = [Receipt("biz-1", True, "k1", address="+8613800000101"),
               Receipt("biz-1", False, "k2", address="+8613800000102", error="UNDELIV")]
    await service.store.apply_receipts("sms", reports, time.time())
    await service.store.record("worker-1", [
        _sent(delivery_id, alert_id, "biz-1", phone)
        for delivery_id, phone in claimed], time.time())
    rows, _ = await service.store.list_deliveries(alert_id, 10, None)
    status = {r.id: r.status for r in rows}
    assert status[by_phone["+8613800000101"]] == "delivered"
    assert status[by_phone["+8613800000102"]] == "failed"


async def test_both_early_reports_of_one_call_end_it_as_the_second_one_says(
        service: Service, make_subscriber: SubscriberFactory) -> None:
    """Tencent reports a call to a number that does not exist twice — "call failed" (worth another call) in its status
    callback, then "空号" (final) in its failure callback — and both come before the send is recorded: the call is not
    made again; the delivery fails, as when the reports come after the record."""
    await make_subscriber(contacts={"voice": "+8613800000201"})
    alert_id, [(delivery_id, _)] = await _claim(service, "voice")
    reports = [Receipt("call-1", False, "call-1:prompt:2", error="result 2 call failed", retry=True),
               Receipt("call-1", False, "call-1:failure:8", error="failure 8 空号", retry=False)]
    for report in reports:  # two pushes, one after the other
        assert (await service.store.apply_receipts("voice", [report], time.time()))["unknown"] == 1
    await service.store.record("worker-1", [_sent(delivery_id, alert_id, "call-1")], time.time(),
                               redial={"voice": CallPolicy(3, 60.0)})
    rows, _ = await service.store.list_deliveries(alert_id, 10, None)
    assert [(r.id, r.status) for r in rows] == [(delivery_id, "failed")]


async def test_a_repeated_report_is_applied_once(service: Service, make_subscriber: SubscriberFactory) -> None:
    """The provider pushing the same report twice changes the delivery once."""
    await make_subscriber(contacts={"wechat": "oTwice00000000000000000000ab"})
    alert_id, [(delivery_id, _)] = await _claim(service, "wechat")
    await service.store.record("worker-1", [_sent(delivery_id, alert_id, "m")], time.time())
    receipt = Receipt("m", True, "m:success")
    first = await service.store.apply_receipts("wechat", [receipt], time.time())
    second = await service.store.apply_receipts("wechat", [receipt], time.time())
    assert (first["applied"], second["duplicate"]) == (1, 1)


async def test_a_report_for_an_unknown_message_changes_nothing(service: Service) -> None:
    """A report naming a message we never sent is recorded and ignored."""
    counts = await service.store.apply_receipts("sms", [Receipt("nobody", True, "x", address="+8613800000999")],
                                                time.time())
    assert counts["unknown"] == 1
    assert await service.store.queue_stats() == {}


async def test_reports_that_never_matched_are_deleted_after_the_retention_age(
        service: Service, make_subscriber: SubscriberFactory) -> None:
    """The worker deletes unmatched reports older than `early_receipts_days` (7): a send recorded afterwards finds
    no report from 8 days ago, while one from a minute ago is still applied."""
    await make_subscriber(contacts={"wechat": "oOldReport0000000000000000ab"})
    await make_subscriber(contacts={"wechat": "oNewReport0000000000000000ab"})
    alert_id, claimed = await _claim(service, "wechat")
    now = time.time()
    await service.store.apply_receipts("wechat", [Receipt("msg-old", True, "msg-old:success")], now - 8 * 86400)
    await service.store.apply_receipts("wechat", [Receipt("msg-new", True, "msg-new:success")], now - 60)
    await service.dispatcher.run_once()  # its first cycle runs the retention sweep
    (old_id, _), (new_id, _) = claimed
    await service.store.record("worker-1", [_sent(old_id, alert_id, "msg-old"), _sent(new_id, alert_id, "msg-new")],
                               time.time())
    rows, _ = await service.store.list_deliveries(alert_id, 10, None)
    assert {r.id: r.status for r in rows} == {old_id: "sent", new_id: "delivered"}


async def test_a_report_kept_while_a_fan_out_ran_is_as_old_as_when_it_came(service: Service) -> None:
    """A report that came 8 days ago and waited to be applied (kept while the sends ran) counts its age from when it
    came, not from when it was applied: not matched, it goes with the retention sweep like any report that old."""
    now = time.time()
    await service.store.store_reports("wechat", [Receipt("msg-gone", True, "msg-gone:success")], now - 8 * 86400)
    await service.store.apply_waiting({}, 100)
    assert await service.store.sweep_early_receipts(now - 7 * 86400) == 1
