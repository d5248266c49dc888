"""A claim's results written back: a whole SMS request accepted at once (one BizId, one time) is written for the
lease as a whole; anything less than the whole lease is written number by number, and a lease that was reclaimed
writes nothing. Results that are all accepted and final (webhooks, email), or all accepted one by one awaiting their
reports (Tencent's serial numbers, WeChat), are written with their targets' marks in one statement where the database
allows (PostgreSQL), with the same fence."""

from __future__ import annotations

import time

import pytest

from channels.base import Receipt
from notifier.coverage import alert_coverage
from notifier.models import AlertIn
from notifier.publish import publish_alert
from notifier.service import Service
from notifier.states import DeliveryStatus
from notifier.store.records import ClaimedDelivery, DeliveryUpdate
from tests.conftest import SubscriberFactory
from tests.invariants import timestamp_violations

pytestmark = pytest.mark.both_backends  # SQLite and PostgreSQL (tests/conftest.py)

PHONES = ("+8613800000201", "+8613800000202", "+8613800000203")


HOOKS = tuple(f"https://hooks.example.org/{n}" for n in range(3))


async def _claimed(service: Service, make_subscriber: SubscriberFactory,
                   channel: str = "sms") -> tuple[str, list[ClaimedDelivery]]:
    """Three subscribers (SMS, or webhook) warned, their deliveries claimed by worker-1."""
    for address in PHONES if channel == "sms" else HOOKS:
        await make_subscriber(contacts={channel: address})
    alert, _ = await publish_alert(service.store, AlertIn(topic="env.heavy-pollution", headline="重污染天气预警",
                                                          severity="severe"), None)
    now = time.time()
    claimed = await service.store.claim("worker-1", now, now + 60, 100)
    assert len(claimed) == 3
    return alert.id, claimed


def _accepted(claimed: list[ClaimedDelivery], at: float, biz_id: str = "biz-1") -> list[DeliveryUpdate]:
    return [DeliveryUpdate(d.id, d.alert_id, DeliveryStatus.SENT, at, provider_message_id=biz_id)
            for d in claimed]

def _one_by_one(claimed: list[ClaimedDelivery], at: float) -> list[DeliveryUpdate]:
    """Each number accepted under a serial number of its own, a millisecond apart (Tencent's answer, or WeChat's)."""
    return [DeliveryUpdate(d.id, d.alert_id, DeliveryStatus.SENT, at + n / 1000, provider_message_id=f"serial-{n}",
                           address=d.address) for n, d in enumerate(claimed)]


def _answered(answer: str, claimed: list[ClaimedDelivery], at: float) -> list[DeliveryUpdate]:
    return _accepted(claimed, at) if answer == "one request" else _one_by_one(claimed, at)


async def _statuses(service: Service, alert_id: str) -> dict[str, tuple[str, str | None]]:
    rows, _ = await service.store.list_deliveries(alert_id, 10, None)
    return {r.id: (r.status, r.provider_message_id) for r in rows}


@pytest.mark.parametrize("answer", ["one request", "one by one"])
async def test_numbers_accepted_are_sent_under_their_ids_and_their_people_accepted(
        service: Service, make_subscriber: SubscriberFactory, answer: str) -> None:
    """Aliyun accepts the request's three numbers under one BizId, or each number is accepted under a serial number
    of its own (Tencent): each is sent under its id, each subscriber counts as accepted at the send's time (none
    reached: no report yet), and nothing of the claim stays leased."""
    alert_id, claimed = await _claimed(service, make_subscriber)
    at = time.time()
    results = _answered(answer, claimed, at)
    written = (await service.store.record("worker-1", results, at + 0.5)).written
    assert sorted(written) == sorted(d.id for d in claimed)
    statuses = await _statuses(service, alert_id)
    assert [statuses[u.delivery_id] for u in results] == [("sent", u.provider_message_id) for u in results]
    coverage = await alert_coverage(service.store, alert_id)
    assert (coverage.accepted, coverage.reached, coverage.by_channel["sms"].sent) == (3, 0, 3)
    assert coverage.by_channel["sms"].awaiting_receipt == 3
    assert await timestamp_violations(service.store, alert_id) == []
    # Nothing is left for the lease sweep: long after the lease's end, no delivery is sent again.
    assert (await service.store.sweep(at + 3600))["reclaimed"] == 0


async def test_results_for_part_of_a_claim_leave_the_rest_leased(
        service: Service, make_subscriber: SubscriberFactory) -> None:
    """Two of the claim's three numbers recorded, with one outcome: the third is still the worker's, sending."""
    alert_id, claimed = await _claimed(service, make_subscriber)
    at = time.time()
    await service.store.record("worker-1", _accepted(claimed[:2], at), at)
    statuses = await _statuses(service, alert_id)
    assert [statuses[d.id] for d in claimed] == [("sent", "biz-1"), ("sent", "biz-1"), ("sending", None)]
    assert (await alert_coverage(service.store, alert_id)).accepted == 2


@pytest.mark.parametrize("answer", ["one request", "one by one"])
async def test_numbers_recorded_after_their_lease_was_reclaimed_write_nothing(
        service: Service, make_subscriber: SubscriberFactory, answer: str) -> None:
    """A worker presumed dead comes back with its numbers' results — one request accepted whole, or each number
    under its own serial number — after the sweep gave them to the queue again: the results are refused, and the
    numbers wait for their next send."""
    alert_id, claimed = await _claimed(service, make_subscriber)
    assert (await service.store.sweep(time.time() + 120))["reclaimed"] == len(PHONES)
    at = time.time()
    results = _answered(answer, claimed, at)
    assert (await service.store.record("worker-1", results, at)).written == []
    assert set((await _statuses(service, alert_id)).values()) == {("queued", None)}
    assert (await alert_coverage(service.store, alert_id)).accepted == 0


async def test_early_reports_on_a_whole_request_settle_each_number(
        service: Service, make_subscriber: SubscriberFactory) -> None:
    """Reports for two of the request's numbers arrive before the request is recorded: when it is, those two
    are settled (one delivered, one failed) and the third stays sent, awaiting its report."""
    alert_id, claimed = await _claimed(service, make_subscriber)
    reports = [Receipt("biz-1", True, "k1", address=PHONES[0]),
               Receipt("biz-1", False, "k2", address=PHONES[1], error="UNDELIV")]
    await service.store.apply_receipts("sms", reports, time.time())
    at = time.time()
    await service.store.record("worker-1", [u._replace(address=d.address)
                                            for u, d in zip(_accepted(claimed, at), claimed, strict=True)], at)
    statuses = await _statuses(service, alert_id)
    by_phone = {d.address: statuses[d.id][0] for d in claimed}
    assert by_phone == {PHONES[0]: "delivered", PHONES[1]: "failed", PHONES[2]: "sent"}
    coverage = await alert_coverage(service.store, alert_id)
    assert (coverage.accepted, coverage.reached) == (3, 1)


async def test_a_person_reached_on_two_channels_in_one_batch_counts_from_the_first(
        service: Service, make_subscriber: SubscriberFactory) -> None:
    """One person, a webhook and an email, both delivered in one claim's record, the later listed first: the
    alert reached them at the earlier time, whatever order the batch gives."""
    await make_subscriber(contacts={"webhook": "https://hooks.example.org/a", "email": "a@example.org"})
    alert, _ = await publish_alert(service.store, AlertIn(topic="env.heavy-pollution", headline="重污染天气预警",
                                                          severity="severe", policy="all"), None)
    now = time.time()
    claimed = await service.store.claim("worker-1", now, now + 60, 100)
    assert len(claimed) == 2
    at = alert.created_at + 1.0
    times = {d.id: at + 2.0 * n for n, d in enumerate(claimed)}  # the first claimed is the first reach
    updates = [DeliveryUpdate(d.id, d.alert_id, DeliveryStatus.DELIVERED, times[d.id]) for d in reversed(claimed)]
    await service.store.record("worker-1", updates, at + 5.0)
    coverage = await alert_coverage(service.store, alert.id)
    assert coverage.reached == 1
    assert coverage.time_to_reach.p50 == pytest.approx(1.0, abs=1e-6)


def _delivered(claimed: list[ClaimedDelivery], at: float) -> list[DeliveryUpdate]:
    """Each endpoint answered 2xx, a millisecond apart."""
    return [DeliveryUpdate(d.id, d.alert_id, DeliveryStatus.DELIVERED, at + n / 1000) for n, d in enumerate(claimed)]


async def test_webhooks_answered_are_delivered_and_reach_their_people_at_their_own_times(
        service: Service, make_subscriber: SubscriberFactory) -> None:
    """Three endpoints answered 2xx: each delivery is delivered, every person reached, the first at the first
    answer's time, and nothing of the claim stays leased."""
    alert_id, claimed = await _claimed(service, make_subscriber, "webhook")
    at = time.time()
    written = (await service.store.record("worker-1", _delivered(claimed, at), at + 0.5, people_once=True)).written
    assert sorted(written) == sorted(d.id for d in claimed)
    assert set((await _statuses(service, alert_id)).values()) == {("delivered", None)}
    coverage = await alert_coverage(service.store, alert_id)
    assert (coverage.accepted, coverage.reached, coverage.by_channel["webhook"].delivered) == (3, 3, 3)
    assert await timestamp_violations(service.store, alert_id) == []
    assert (await service.store.sweep(at + 3600))["reclaimed"] == 0


async def test_webhook_results_for_part_of_a_claim_leave_the_rest_leased(
        service: Service, make_subscriber: SubscriberFactory) -> None:
    """Two of the claim's three endpoints answered: the third is still the worker's, sending, its person not
    reached."""
    alert_id, claimed = await _claimed(service, make_subscriber, "webhook")
    at = time.time()
    assert len((await service.store.record("worker-1", _delivered(claimed[:2], at), at)).written) == 2
    statuses = await _statuses(service, alert_id)
    assert [statuses[d.id][0] for d in claimed] == ["delivered", "delivered", "sending"]
    assert (await alert_coverage(service.store, alert_id)).reached == 2


async def test_webhooks_answered_after_the_lease_was_reclaimed_write_nothing_and_reach_nobody(
        service: Service, make_subscriber: SubscriberFactory) -> None:
    """A worker presumed dead comes back with its endpoints' 2xx answers after the sweep gave the deliveries to
    the queue again: the answers are refused, nobody counts as reached, and the deliveries wait for their next
    send."""
    alert_id, claimed = await _claimed(service, make_subscriber, "webhook")
    assert (await service.store.sweep(time.time() + 120))["reclaimed"] == 3
    at = time.time()
    assert (await service.store.record("worker-1", _delivered(claimed, at), at, people_once=True)).written == []
    assert set((await _statuses(service, alert_id)).values()) == {("queued", None)}
    coverage = await alert_coverage(service.store, alert_id)
    assert (coverage.accepted, coverage.reached) == (0, 0)


async def test_webhooks_answered_after_another_worker_took_over_leave_its_result_standing(
        service: Service, make_subscriber: SubscriberFactory) -> None:
    """The sweep reclaimed the claim and worker-2 claimed and failed one endpoint for good; worker-1's late 2xx
    for it changes nothing: that delivery stays failed, its person unreached."""
    alert_id, claimed = await _claimed(service, make_subscriber, "webhook")
    await service.store.sweep(time.time() + 120)
    later = time.time() + 120
    again = await service.store.claim("worker-2", later, later + 60, 100)
    failed = [DeliveryUpdate(d.id, d.alert_id, DeliveryStatus.FAILED, later, error="HTTP 404") for d in again[:1]]
    assert len((await service.store.record("worker-2", failed, later)).written) == 1
    assert (await service.store.record("worker-1", _delivered(claimed, later), later)).written == []
    statuses = await _statuses(service, alert_id)
    assert statuses[again[0].id][0] == "failed"
    assert (await alert_coverage(service.store, alert_id)).reached == 0



async def test_a_report_that_came_before_its_number_was_recorded_settles_it(
        service: Service, make_subscriber: SubscriberFactory) -> None:
    """The second number's delivery report arrived before the claim's results were recorded: when they are, that
    number is delivered and its person reached; the other two stay sent."""
    alert_id, claimed = await _claimed(service, make_subscriber)
    await service.store.apply_receipts("sms", [Receipt("serial-1", True, "r1", address=claimed[1].address)],
                                       time.time())
    at = time.time()
    await service.store.record("worker-1", _one_by_one(claimed, at), at + 0.5, people_once=True)
    statuses = await _statuses(service, alert_id)
    assert [statuses[d.id][0] for d in claimed] == ["sent", "delivered", "sent"]
    assert (await alert_coverage(service.store, alert_id)).reached == 1


async def test_a_report_for_a_number_two_people_share_settles_both_of_their_sends(
        service: Service, make_subscriber: SubscriberFactory) -> None:
    """A family shares one phone: two subscribers, one number, both in one request under one BizId. The number's
    delivery report is true for both; the third number of the request stays sent."""
    shared = "+8613800000299"
    for phone in (shared, shared, PHONES[0]):
        await make_subscriber(contacts={"sms": phone})
    alert, _ = await publish_alert(service.store, AlertIn(topic="env.heavy-pollution", headline="重污染天气预警",
                                                          severity="severe"), None)
    now = time.time()
    claimed = await service.store.claim("worker-1", now, now + 60, 100)
    await service.store.record("worker-1", _accepted(claimed, now), now + 0.5)
    await service.store.apply_receipts("sms", [Receipt("biz-1", True, "r-shared", address=shared)], time.time())
    statuses = await _statuses(service, alert.id)
    assert sorted(statuses[d.id][0] for d in claimed if d.address == shared) == ["delivered", "delivered"]
    assert [statuses[d.id][0] for d in claimed if d.address != shared] == ["sent"]
    assert (await alert_coverage(service.store, alert.id)).reached == 2
