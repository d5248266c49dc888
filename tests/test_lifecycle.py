"""Updates and cancels as SPEC "Lifecycle" says: on the frozen targets, atomically, idempotently under
concurrency; sends in flight at a cancel; retries of a stopped alert."""

from __future__ import annotations

import asyncio
import json
import time

import pytest

from notifier.coverage import alert_coverage
from notifier.errors import ConflictError, InvalidInput
from notifier.fakes.webhook_receiver import Reply, RunningReceiver
from notifier.models import AlertIn
from notifier.publish import cancel_alert, publish_alert
from notifier.service import Service
from notifier.states import DeliveryStatus
from notifier.store.records import DeliveryUpdate
from tests.conftest import SettingsFactory, SubscriberFactory, settle
from tests.store.test_queue_wakes import WITHIN, _subscribe

pytestmark = pytest.mark.both_backends  # SQLite and PostgreSQL (tests/conftest.py)

TOPIC = "env.heavy-pollution"


def _alert(**fields: object) -> AlertIn:
    body: dict[str, object] = {"topic": TOPIC, "headline": "重污染天气橙色预警", "severity": "severe"}
    return AlertIn.model_validate({**body, **fields})


def _cancel(original: str, **fields: object) -> AlertIn:
    return _alert(**{"msg_type": "cancel", "references": original, "headline": "预警解除", **fields})


async def _statuses(service: Service, alert_id: str) -> list[str]:
    rows, _ = await service.store.list_deliveries(alert_id, 1000, None)
    return sorted(r.status for r in rows)


async def _one_reached_one_waiting(service: Service, make_subscriber: SubscriberFactory,
                                   receiver: RunningReceiver) -> str:
    """An alert that reached the subscriber at /reached and still waits (a retry) for the one at /waiting."""
    await make_subscriber(contacts={"webhook": receiver.url_for("/reached")})
    await make_subscriber(contacts={"webhook": receiver.url_for("/waiting")})
    receiver.script("/waiting", [503])
    alert, _ = await publish_alert(service.store, _alert(), None)
    await service.dispatcher.run_once()
    assert await _statuses(service, alert.id) == ["delivered", "queued"]
    return alert.id


def _types(receiver: RunningReceiver, path: str) -> list[str]:
    return [json.loads(r.body)["type"] for r in receiver.requests_to(path)]


# ---------------------------------------------------------------- cancel


async def test_a_published_cancel_cancels_the_alert_it_references(
        service: Service, make_subscriber: SubscriberFactory, receiver: RunningReceiver) -> None:
    """Publishing msg_type cancel makes the referenced alert cancelled and stops its waiting deliveries."""
    original = await _one_reached_one_waiting(service, make_subscriber, receiver)
    notice, created = await publish_alert(service.store, _cancel(original), None)
    assert created
    cancelled = await service.store.get_alert(original)
    assert cancelled is not None and cancelled.status == "cancelled" and cancelled.cancel_notice_id == notice.id
    assert await _statuses(service, original) == ["cancelled", "delivered"]


async def test_the_cancel_notice_goes_only_to_those_reached(
        service: Service, make_subscriber: SubscriberFactory, receiver: RunningReceiver) -> None:
    """The one reached gets the cancellation; the one still waiting gets neither the alert nor the cancel."""
    original = await _one_reached_one_waiting(service, make_subscriber, receiver)
    notice, _ = await publish_alert(service.store, _cancel(original), None)
    assert notice.targeted == 1
    await settle(service)
    assert _types(receiver, "/reached") == ["alert.alert", "alert.cancel"]
    assert _types(receiver, "/waiting") == ["alert.alert"]  # the 503 attempt, never retried


async def test_repeating_a_cancel_returns_the_same_notice_and_sends_nothing_twice(
        service: Service, make_subscriber: SubscriberFactory, receiver: RunningReceiver) -> None:
    """A second cancel, by route or by publishing, answers with the first notice."""
    original = await _one_reached_one_waiting(service, make_subscriber, receiver)
    first, _ = await publish_alert(service.store, _cancel(original), None)
    again, created = await publish_alert(service.store, _cancel(original, headline="再次解除"), None)
    _, _, by_route = await cancel_alert(service.store, original, None)
    assert (again.id, created) == (first.id, False)
    assert by_route is not None and by_route.id == first.id
    await settle(service)
    assert _types(receiver, "/reached") == ["alert.alert", "alert.cancel"]


async def test_a_cancel_before_anyone_was_reached_has_no_notice(
        service: Service, make_subscriber: SubscriberFactory, receiver: RunningReceiver) -> None:
    """Cancelling an alert nobody has received yet stops everything and notifies no one."""
    await make_subscriber(contacts={"webhook": receiver.url_for("/none")})
    alert, _ = await publish_alert(service.store, _alert(), None)
    cancelled, stopped, notice = await cancel_alert(service.store, alert.id, None)
    assert (cancelled.status, stopped, notice) == ("cancelled", 1, None)
    await settle(service)
    assert receiver.requests_to("/none") == []


async def test_ten_concurrent_cancels_make_one_notice(
        service: Service, make_subscriber: SubscriberFactory, receiver: RunningReceiver) -> None:
    """Ten cancels at once — five by route, five published — all answer with one notice, sent once."""
    original = await _one_reached_one_waiting(service, make_subscriber, receiver)
    routes = [cancel_alert(service.store, original, None) for _ in range(5)]
    published = [publish_alert(service.store, _cancel(original), None) for _ in range(5)]
    results = await asyncio.gather(*routes, *published)
    notices = {r[2].id for r in results[:5] if r[2] is not None} | {r[0].id for r in results[5:]}
    assert len(notices) == 1
    cancels = [a for a in (await service.store.list_alerts(50, None))[0] if a.msg_type == "cancel"]
    assert [a.id for a in cancels] == list(notices)
    await settle(service)
    assert _types(receiver, "/reached") == ["alert.alert", "alert.cancel"]


async def test_a_send_in_flight_at_the_cancel_that_lands_gets_the_notice_once(
        service: Service, make_subscriber: SubscriberFactory, receiver: RunningReceiver) -> None:
    """A worker holding a delivery when the cancel commits finishes it; once it lands, that subscriber is told."""
    await make_subscriber(contacts={"webhook": receiver.url_for("/flight")})
    alert, _ = await publish_alert(service.store, _alert(), None)
    now = time.time()
    [claimed] = await service.store.claim("slow-worker", now, now + 60, 10)
    _, _, notice = await cancel_alert(service.store, alert.id, None)
    assert notice is None  # nobody had been reached at the cancel
    landed = DeliveryUpdate(claimed.id, alert.id, DeliveryStatus.DELIVERED, time.time())
    recorded = await service.store.record("slow-worker", [landed], time.time())
    cancelled = await service.store.get_alert(alert.id)
    assert cancelled is not None and cancelled.cancel_notice_id is not None
    assert recorded.written == [claimed.id]
    assert [n.id for n in recorded.noticed] == [cancelled.cancel_notice_id]  # the notice it queued: its worker wakes
    _, _, repeated = await cancel_alert(service.store, alert.id, None)
    assert repeated is not None and (repeated.id, repeated.targeted) == (cancelled.cancel_notice_id, 1)
    await settle(service)
    assert _types(receiver, "/flight") == ["alert.cancel"]


async def _received(receiver: RunningReceiver, path: str, count: int) -> None:
    async with asyncio.timeout(WITHIN):
        while len(receiver.requests_to(path)) < count:  # noqa: ASYNC110 - polling another component's state
            await asyncio.sleep(0.02)


async def test_a_worker_sends_the_notice_for_a_send_that_landed_after_the_cancel_without_waiting_for_its_poll(
        make_settings: SettingsFactory, receiver: RunningReceiver) -> None:
    """The worker polls once an hour, and its routine claims leave life-safety rows to its life-safety loop: only
    its own record of the send, which queued the notice, can tell that loop of it."""
    receiver.script("/flight", [Reply(delay=0.5)])
    async with Service(make_settings(worker={"enabled": True, "poll_interval": 3600})) as service:
        await _subscribe(service, receiver.url_for("/flight"))
        service.start_worker()
        alert, _ = await publish_alert(service.store, _alert(), None)
        await _received(receiver, "/flight", 1)
        _, _, notice = await cancel_alert(service.store, alert.id, None)
        assert notice is None  # in flight, nobody reached yet
        await _received(receiver, "/flight", 2)
    assert _types(receiver, "/flight") == ["alert.alert", "alert.cancel"]


async def test_a_running_worker_withdraws_an_orange_warning_and_goes_on_sending(
        make_settings: SettingsFactory, receiver: RunningReceiver) -> None:
    """A cancel's notice is queued first of all, as life-safety work, whatever the warning's severity: the worker's
    life-safety loop sends it, and routine work goes on after it (a notice sent as routine work by the loop that held
    the life-safety window for it waited for that window, its own, forever, and every routine send behind it)."""
    async with Service(make_settings(worker={"enabled": True})) as service:
        await _subscribe(service, receiver.url_for("/orange"))
        service.start_worker()
        orange, _ = await publish_alert(service.store, _alert(), None)
        await _received(receiver, "/orange", 1)
        await settle(service)
        _, _, notice = await cancel_alert(service.store, orange.id, None)
        assert notice is not None
        service.dispatcher.wake(notice)
        await _received(receiver, "/orange", 2)
        await publish_alert(service.store, _alert(severity="minor", headline="空气质量预报"), None)
        await _received(receiver, "/orange", 3)
    assert _types(receiver, "/orange") == ["alert.alert", "alert.cancel", "alert.alert"]


async def test_a_retry_of_a_cancelled_alert_is_not_queued_again(
        service: Service, make_subscriber: SubscriberFactory, receiver: RunningReceiver) -> None:
    """A send in flight at the cancel that fails transiently ends cancelled instead of being retried."""
    await make_subscriber(contacts={"webhook": receiver.url_for("/retry")})
    alert, _ = await publish_alert(service.store, _alert(), None)
    now = time.time()
    [claimed] = await service.store.claim("slow-worker", now, now + 60, 10)
    await cancel_alert(service.store, alert.id, None)
    retry = DeliveryUpdate(claimed.id, alert.id, DeliveryStatus.QUEUED, time.time(), next_attempt_at=time.time(),
                           error="HTTP 503")
    await service.store.record("slow-worker", [retry], time.time())
    assert await _statuses(service, alert.id) == ["cancelled"]


# ---------------------------------------------------------------- update


async def test_an_update_supersedes_its_alert_and_stops_what_waits(
        service: Service, make_subscriber: SubscriberFactory, receiver: RunningReceiver) -> None:
    """The referenced alert shows as superseded; its deliveries still waiting are cancelled."""
    original = await _one_reached_one_waiting(service, make_subscriber, receiver)
    update, _ = await publish_alert(service.store, _alert(msg_type="update", references=original,
                                                          headline="预警升级"), None)
    superseded = await service.store.get_alert(original)
    assert superseded is not None and superseded.status == "superseded"
    assert await _statuses(service, original) == ["cancelled", "delivered"]
    assert update.targeted == 2  # both frozen targets, reached or not


async def test_an_update_goes_to_the_frozen_targets_under_their_frozen_region(
        service: Service, make_subscriber: SubscriberFactory, receiver: RunningReceiver) -> None:
    """A target who moved away still gets the update, counted where the alert found them; a newcomer to the
    area does not."""
    mover = await make_subscriber(contacts={"webhook": receiver.url_for("/mover")}, region="140402",
                                  groups=["elderly"])
    original, _ = await publish_alert(service.store, _alert(regions=["140402"]), None)
    await service.store.update_subscriber(mover.id, {"region": "140411"}, None, {}, [])
    await make_subscriber(contacts={"webhook": receiver.url_for("/newcomer")}, region="140402")
    update, _ = await publish_alert(service.store, _alert(msg_type="update", references=original.id), None)
    assert update.targeted == 1
    coverage = await alert_coverage(service.store, update.id)
    assert list(coverage.by_region) == ["140402"] and list(coverage.by_group) == ["elderly"]


async def test_an_update_that_widens_the_area_reaches_the_added_region(
        service: Service, make_subscriber: SubscriberFactory, receiver: RunningReceiver) -> None:
    """Widening 城区 to 城区 + 郊区 adds 郊区's subscribers, and only them."""
    await make_subscriber(contacts={"webhook": receiver.url_for("/a")}, region="140402")
    original, _ = await publish_alert(service.store, _alert(regions=["140402"]), None)
    await settle(service)
    await make_subscriber(contacts={"webhook": receiver.url_for("/moved-in")}, region="140402")
    await make_subscriber(contacts={"webhook": receiver.url_for("/added")}, region="140411")
    await make_subscriber(contacts={"webhook": receiver.url_for("/outside")}, region="140421")
    update, _ = await publish_alert(service.store, _alert(msg_type="update", references=original.id,
                                                          regions=["140402", "140411"]), None)
    assert update.targeted == 2
    await settle(service)
    assert [len(receiver.requests_to(p)) for p in ("/a", "/moved-in", "/added", "/outside")] == [2, 0, 1, 0]


async def test_a_cancelled_or_superseded_alert_cannot_be_updated(
        service: Service, make_subscriber: SubscriberFactory, receiver: RunningReceiver) -> None:
    """Updating a cancelled alert, or one already superseded, is a conflict (409)."""
    await make_subscriber(contacts={"webhook": receiver.url_for("/x")})
    cancelled, _ = await publish_alert(service.store, _alert(), None)
    await cancel_alert(service.store, cancelled.id, None)
    replaced, _ = await publish_alert(service.store, _alert(), None)
    await publish_alert(service.store, _alert(msg_type="update", references=replaced.id), None)
    for alert_id in (cancelled.id, replaced.id):
        with pytest.raises(ConflictError):
            await publish_alert(service.store, _alert(msg_type="update", references=alert_id), None)


async def test_a_reference_to_another_topic_is_refused(service: Service) -> None:
    """A cancel of another topic's alert is invalid input (422), and nothing changes."""
    other, _ = await publish_alert(service.store, _alert(topic="transit.fare-change", headline="票价调整"), None)
    with pytest.raises(InvalidInput):
        await publish_alert(service.store, _cancel(other.id), None)
    unchanged = await service.store.get_alert(other.id)
    assert unchanged is not None and unchanged.status == "active"
