"""A publish to many people answers once its target set is stored, and its delivery rows follow in a transaction of
their own (`store/fan_out_later.py`, `[database] deliveries_after_answer_from`): everyone targeted still gets
exactly one delivery per usable channel, whatever happens between the two — the publishing process stopping, an
update, a cancel or the alert's expiry coming first, or two processes adding the rows at once."""

from __future__ import annotations

import asyncio
import json
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from notifier.coverage import alert_coverage
from notifier.database import open_database
from notifier.dispatch import Dispatcher
from notifier.fakes.webhook_receiver import RunningReceiver
from notifier.models import AlertIn, MsgType, Role
from notifier.publish import cancel_alert, publish_alert
from notifier.service import Service
from notifier.store import fan_out_later
from notifier.store.records import PeriodFilter
from notifier.subscribers import create_subscriber
from notifier.web.admin.views import alert_figures, alert_lines
from subscriptions.models import SubscriberIn
from tests.conftest import SettingsFactory, SubscriberFactory, settle
from tests.crowd import sms_people

pytestmark = pytest.mark.both_backends  # SQLite and PostgreSQL (tests/conftest.py)

ROOT = Path(__file__).resolve().parents[1]
MANY = 3  # this test service's `deliveries_after_answer_from`
SLICE = 1_000  # … and its `fan_out_slice`
POLLUTION = AlertIn(topic="env.heavy-pollution", headline="重污染天气橙色预警")


@pytest.fixture
async def service(make_settings: SettingsFactory) -> AsyncIterator[Service]:
    """A service whose publishes to MANY people or more answer before their delivery rows exist, added SLICE
    people a transaction."""
    async with Service(make_settings(database={"deliveries_after_answer_from": MANY,
                                               "fan_out_slice": SLICE})) as running:
        yield running


async def _people(make_subscriber: SubscriberFactory, receiver: RunningReceiver, count: int) -> None:
    for n in range(count):
        await make_subscriber(contacts={"webhook": receiver.url_for(f"/p{n}")})


async def _deliveries(service: Service, alert_id: str) -> list[tuple[str, str]]:
    """(subscriber, status) of every delivery row of the alert."""
    rows = await service.store.backend.reader.fetch(
        "SELECT subscriber_id, status FROM deliveries WHERE alert_id = ? ORDER BY subscriber_id", alert_id)
    return [(str(r[0]), str(r[1])) for r in rows]


async def _waiting(service: Service) -> list[str]:
    return await fan_out_later.stalled(service.store.backend.reader, time.time() + 1)


async def _published_by_a_process_that_stopped(service: Service, expires_in: float | None = None) -> str:
    """The id of a disclosure another process published to everyone subscribed, answered, and stopped before it
    could add the delivery rows (`tests/publish_then_stop.py`)."""
    other = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "tests.publish_then_stop", service.settings.database.url,
        *([] if expires_in is None else [str(expires_in)]), cwd=ROOT, stdout=asyncio.subprocess.PIPE)
    out, _ = await asyncio.wait_for(other.communicate(), 60)
    assert other.returncode == 0
    word, alert_id = out.split()
    assert word == b"PUBLISHED"
    return alert_id.decode()


async def test_a_publish_to_many_answers_with_its_targets_and_everyone_gets_one_delivery(
        service: Service, make_subscriber: SubscriberFactory, receiver: RunningReceiver) -> None:
    """Four people, answered before their rows exist: the answer says four are targeted, then each gets one
    delivery, sent once."""
    await _people(make_subscriber, receiver, 4)
    alert, _ = await publish_alert(service.store, POLLUTION, None)
    assert alert.targeted == 4
    await service.store.fanned_out()
    assert [status for _, status in await _deliveries(service, alert.id)] == ["queued"] * 4
    assert await _waiting(service) == []
    await settle(service)
    assert sorted(len(receiver.requests_to(f"/p{n}")) for n in range(4)) == [1, 1, 1, 1]


async def test_a_publish_to_fewer_stores_its_deliveries_with_it(
        service: Service, make_subscriber: SubscriberFactory, receiver: RunningReceiver) -> None:
    """Two people, fewer than MANY: their rows are there when the publish answers, nothing is left to add."""
    await _people(make_subscriber, receiver, 2)
    alert, _ = await publish_alert(service.store, POLLUTION, None)
    assert [status for _, status in await _deliveries(service, alert.id)] == ["queued"] * 2
    assert await _waiting(service) == []


async def test_a_publish_whose_process_stopped_after_answering_is_sent_by_a_workers_sweep(
        service: Service, make_subscriber: SubscriberFactory, receiver: RunningReceiver) -> None:
    """The publishing process stopped before it added the rows: a worker's sweep adds them once the publish is
    `STALLED_AFTER` old (not before: its own process would be adding them), and everyone is sent to once."""
    await _people(make_subscriber, receiver, 4)
    alert_id = await _published_by_a_process_that_stopped(service)
    assert await _deliveries(service, alert_id) == []

    def worker_at(moment: float) -> Dispatcher:
        return Dispatcher(service.store, service.channels, service.renderer, service.settings.worker,
                          clock=lambda: moment)

    await worker_at(time.time()).run_once()
    assert await _deliveries(service, alert_id) == []
    await worker_at(time.time() + fan_out_later.STALLED_AFTER + 1).run_once()
    assert len(await _deliveries(service, alert_id)) == 4
    assert await _waiting(service) == []
    await settle(service)
    assert sorted(len(receiver.requests_to(f"/p{n}")) for n in range(4)) == [1, 1, 1, 1]


async def test_a_cancel_before_the_rows_were_added_stops_every_delivery(
        service: Service, make_subscriber: SubscriberFactory, receiver: RunningReceiver) -> None:
    """Cancelled while its rows were still to be added: they are added and cancelled with the alert, nobody is
    sent anything, and no sweep adds them again."""
    await _people(make_subscriber, receiver, 4)
    alert_id = await _published_by_a_process_that_stopped(service)
    cancelled, stopped, notice = await cancel_alert(service.store, alert_id, None)
    assert (cancelled.status, stopped, notice) == ("cancelled", 4, None)
    assert [status for _, status in await _deliveries(service, alert_id)] == ["cancelled"] * 4
    assert await service.store.finish_stalled_fan_outs(time.time() + fan_out_later.STALLED_AFTER + 1) == 0
    await settle(service)
    assert [r for n in range(4) for r in receiver.requests_to(f"/p{n}")] == []


async def test_an_update_before_the_rows_were_added_replaces_the_alert_for_everyone(
        service: Service, make_subscriber: SubscriberFactory, receiver: RunningReceiver) -> None:
    """Updated while its rows were still to be added: the first alert's rows are added and cancelled as it is
    superseded; the update goes to each of the four once."""
    await _people(make_subscriber, receiver, 4)
    alert_id = await _published_by_a_process_that_stopped(service)
    update, _ = await publish_alert(service.store, POLLUTION.model_copy(update={
        "msg_type": MsgType.UPDATE, "references": alert_id, "headline": "重污染天气红色预警"}), None)
    assert (await service.store.get_alert(alert_id)).status == "superseded"  # type: ignore[union-attr]
    assert [status for _, status in await _deliveries(service, alert_id)] == ["cancelled"] * 4
    await service.store.fanned_out()
    assert [status for _, status in await _deliveries(service, update.id)] == ["queued"] * 4
    await settle(service)
    sent = [r for n in range(4) for r in receiver.requests_to(f"/p{n}")]
    assert [json.loads(r.body)["alert_id"] for r in sent] == [update.id] * 4


async def test_an_alert_that_expired_before_its_rows_were_added_sends_nothing(
        service: Service, make_subscriber: SubscriberFactory, receiver: RunningReceiver) -> None:
    """Expired while its rows were still to be added: they are added as expired, and nothing is sent."""
    await _people(make_subscriber, receiver, 3)
    alert_id = await _published_by_a_process_that_stopped(service, expires_in=60)
    swept = await service.store.sweep(time.time() + 120)
    assert swept["expired"] == 3
    assert [status for _, status in await _deliveries(service, alert_id)] == ["expired"] * 3
    assert await _waiting(service) == []
    await settle(service)
    assert [r for n in range(3) for r in receiver.requests_to(f"/p{n}")] == []


async def test_two_processes_adding_the_rows_at_once_add_them_once(
        service: Service, make_subscriber: SubscriberFactory, receiver: RunningReceiver) -> None:
    """The publisher's own addition and another process's sweep at the same moment: one adds the rows, the other
    finds nothing left to add; each person has one row."""
    await _people(make_subscriber, receiver, 4)
    alert_id = await _published_by_a_process_that_stopped(service)
    other = await open_database(service.settings, upgrade=False)
    try:
        added = await asyncio.gather(service.store.finish_fan_out(alert_id), other.finish_fan_out(alert_id))
    finally:
        await other.close()
    assert sorted(added) == [False, True]
    rows = await _deliveries(service, alert_id)
    assert len(rows) == len({subscriber for subscriber, _ in rows}) == 4


@pytest.mark.parametrize("warning", [POLLUTION, AlertIn(topic="env.heavy-pollution", headline="重污染天气红色预警",
                                                          severity="extreme", urgency="immediate", level="red")],
                         ids=["routine", "red"])
async def test_this_processs_workers_send_a_large_publish_as_soon_as_its_rows_are_added(
        make_settings: SettingsFactory, receiver: RunningReceiver, warning: AlertIn) -> None:
    """A serving process whose workers look for work only every half minute unless told: the rows added after
    the answer are sent at once, not at the next look — a routine warning's by the routine loops, a red one's by
    the life-safety loop too."""
    settings = make_settings(database={"deliveries_after_answer_from": MANY},
                             worker={"enabled": True, "poll_interval": 30.0})
    async with Service(settings) as running:
        for n in range(4):
            await create_subscriber(running.store, SubscriberIn.model_validate({
                "contacts": {"webhook": receiver.url_for(f"/p{n}")}, "region": "140402",
                "subscriptions": [{"topic": "env.heavy-pollution", "channels": ["webhook"]}]}),
                allow_private_webhooks=True)
        running.start_worker()
        await asyncio.sleep(0.5)  # the workers have looked once, found nothing, and wait to be told
        await publish_alert(running.store, warning, None)
        async with asyncio.timeout(10):
            while sum(len(receiver.requests_to(f"/p{n}")) for n in range(4)) < 4:  # noqa: ASYNC110 - polling another component
                await asyncio.sleep(0.05)


async def _rows_per_person(service: Service, alert_id: str) -> dict[int, int]:
    """How many people have how many delivery rows of the alert, and how many ids the rows have."""
    rows = await service.store.backend.reader.fetch(
        "SELECT n, COUNT(*) FROM (SELECT subscriber_id, COUNT(*) AS n FROM deliveries WHERE alert_id = ? "
        "GROUP BY subscriber_id) per GROUP BY n", alert_id)
    return {int(r[0]): int(r[1]) for r in rows}


async def test_a_city_gets_its_rows_a_slice_at_a_time_each_person_once(service: Service) -> None:
    """Two and a half slices of people by SMS then email under `fallback`: each has one queued SMS and one email
    waiting behind it, every row its own id."""
    people = 2 * SLICE + SLICE // 2
    await service.store.bulk_create_subscribers(sms_people(people, email=True), [{}] * people)
    alert, _ = await publish_alert(service.store, AlertIn(topic="env.heavy-pollution", headline="重污染天气橙色预警",
                                                          policy="fallback"), None)
    assert alert.targeted == people
    await service.store.fanned_out()
    rows = await service.store.backend.reader.fetch(
        "SELECT channel, status, COUNT(*), COUNT(DISTINCT subscriber_id), COUNT(DISTINCT id) FROM deliveries "
        "WHERE alert_id = ? GROUP BY channel, status ORDER BY channel", alert.id)
    assert [tuple(r) for r in rows] == [("email", "skipped", people, people, people),
                                        ("sms", "queued", people, people, people)]
    assert await _waiting(service) == []


async def test_a_fan_out_left_half_done_is_finished_from_where_it_stopped(
        service: Service, make_subscriber: SubscriberFactory, receiver: RunningReceiver) -> None:
    """The publishing process stopped after one slice of three: a worker's sweep adds the other two, and everyone
    has exactly one row."""
    people = 2 * SLICE + 7
    await service.store.bulk_create_subscribers(sms_people(people), [{}] * people)
    alert_id = await _published_by_a_process_that_stopped(service)
    first = await service.store.backend.run(lambda db: fan_out_later.add_slice(db, alert_id, SLICE, time.time() - 60))
    assert first is not None and not first.done
    assert await _rows_per_person(service, alert_id) == {1: SLICE}
    assert await service.store.finish_stalled_fan_outs(time.time()) == 1
    assert await _rows_per_person(service, alert_id) == {1: people}
    assert await _waiting(service) == []


async def test_the_people_whose_rows_are_still_to_be_added_count_as_pending_not_as_without_contact(
        service: Service) -> None:
    """An admin reads the coverage in the seconds after the answer: nobody shows as having no usable contact — not
    before the first slice, not between two."""
    people = 2 * SLICE + 7
    await service.store.bulk_create_subscribers(sms_people(people), [{}] * people)
    alert_id = await _published_by_a_process_that_stopped(service)

    async def unreached() -> list[dict[str, int]]:
        """The alert's unreached by cause, and the period figures' (the department's)."""
        [cell] = await service.store.period_cells(PeriodFilter())
        return [(await alert_coverage(service.store, alert_id)).unreachable, cell.unreachable]

    assert await unreached() == [{"pending": people}] * 2
    await service.store.backend.run(lambda db: fan_out_later.add_slice(db, alert_id, SLICE, time.time()))
    assert await unreached() == [{"pending": people}] * 2
    assert await service.store.finish_fan_out(alert_id)
    assert await unreached() == [{"pending": people}] * 2


async def _people_to_add(service: Service) -> float:
    """The operators' gauge, as scraped."""
    text = (await service.metrics.render(service.store)).decode()
    [value] = [s.value for f in text_string_to_metric_families(text) for s in f.samples
               if s.name == "notifier_fan_out_people_to_add"]
    return value


async def test_operators_see_how_many_people_still_wait_for_their_rows(service: Service) -> None:
    """A fan-out left by a stopped process shows in the metrics until its rows are all added: not lost from sight
    while no delivery row counts them."""
    people = 2 * SLICE + 7
    await service.store.bulk_create_subscribers(sms_people(people), [{}] * people)
    assert await _people_to_add(service) == 0
    alert_id = await _published_by_a_process_that_stopped(service)
    assert await _people_to_add(service) == people
    await service.store.backend.run(lambda db: fan_out_later.add_slice(db, alert_id, SLICE, time.time()))
    assert await _people_to_add(service) == people - SLICE
    assert await service.store.finish_fan_out(alert_id)
    assert await _people_to_add(service) == 0


async def test_the_dashboard_shows_a_publish_still_being_added_as_sending(service: Service) -> None:
    """Before its rows are added, the alert's page and the alerts list count its people pending and keep
    refreshing: not "Sending has finished" with nobody reached."""
    people = SLICE + 7
    await service.store.bulk_create_subscribers(sms_people(people), [{}] * people)
    alert_id = await _published_by_a_process_that_stopped(service)
    alert = await service.store.get_alert(alert_id)
    assert alert is not None
    page = await alert_figures(service.store, service.catalogue, alert, role=Role.ADMIN, viewer_min_cell=5,
                               lang="en")
    [line] = await alert_lines(service.store, [alert], None)
    assert (page.live, page.pending, line.live, line.pending) == (True, people, True, people)
    assert await service.store.finish_fan_out(alert_id)
    page = await alert_figures(service.store, service.catalogue, alert, role=Role.ADMIN, viewer_min_cell=5,
                               lang="en")
    [line] = await alert_lines(service.store, [alert], None)
    assert (page.live, page.pending, line.live, line.pending) == (True, people, True, people)  # queued now
