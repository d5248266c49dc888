"""PostgreSQL: a worker in another process than the publisher's is told when deliveries are queued (migration 0022),
so a red warning published through the API is claimed at once by scaled-out workers, not at their next poll. Only
committed rows tell; a worker whose listening connection is lost listens again."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator

import asyncpg
import pytest

from channels.base import Receipt
from notifier.config import Settings
from notifier.fakes.webhook_receiver import RunningReceiver
from notifier.models import AlertIn, Policy, Severity, Urgency
from notifier.publish import publish_alert
from notifier.service import Service
from notifier.states import DeliveryStatus, Priority
from notifier.store.pg_db import PgBackend
from notifier.store.records import DeliveryUpdate
from notifier.subscribers import create_subscriber
from subscriptions.models import SubscriberIn
from tests.conftest import SettingsFactory

WITHIN = 15.0  # seconds: how long a test waits for what must come (a loaded CI machine), never a speed claim
RED_WARNING = AlertIn(topic="env.heavy-pollution", headline="重污染天气红色预警", severity=Severity.EXTREME,
                      urgency=Urgency.IMMEDIATE)
ROUTINE_NOTICE = AlertIn(topic="env.heavy-pollution", headline="空气质量预报", severity=Severity.MINOR,
                         urgency=Urgency.EXPECTED)
# One more delivery row of an alert's, on a channel it has no row on (one parameter: the alert's id).
_ANOTHER_CHANNEL = ("INSERT INTO deliveries (id, alert_id, subscriber_id, channel, position, status, priority, "
                    "attempts, next_attempt_at, created_at, updated_at) SELECT id || '-sms', alert_id, "
                    "subscriber_id, 'sms', 2, status, priority, 0, next_attempt_at, created_at, updated_at "
                    "FROM deliveries WHERE alert_id = ?")


async def _subscribe(service: Service, webhook: str) -> None:
    body = SubscriberIn.model_validate({"contacts": {"webhook": webhook}, "region": "140402",
                                        "subscriptions": [{"topic": "env.heavy-pollution", "channels": ["webhook"]}]})
    await create_subscriber(service.store, body, allow_private_webhooks=True)


async def failed_by_report(publisher: Service) -> str:
    """A red warning that falls back, to a person on WeChat then a webhook: its WeChat message sent, then failed by
    WeChat's report, which queues the webhook — a row updated, not inserted. The warning's id."""
    body = SubscriberIn.model_validate({
        "contacts": {"wechat": "oRed00000000000000000000abcd", "webhook": "https://hooks.example.org/next"},
        "region": "140402", "subscriptions": [{"topic": "env.heavy-pollution", "channels": ["wechat", "webhook"]}]})
    await create_subscriber(publisher.store, body, allow_private_webhooks=True)
    red, _ = await publish_alert(publisher.store, RED_WARNING.model_copy(update={"policy": Policy.FALLBACK}), None)
    now = time.time()
    [claimed] = await publisher.store.claim("worker-1", now, now + 60, 10)
    assert claimed.channel == "wechat"  # the webhook waits, skipped, unless WeChat fails
    await publisher.store.record("worker-1", [DeliveryUpdate(claimed.id, red.id, DeliveryStatus.SENT, time.time(),
                                                             provider_message_id="msg-red")], time.time())
    applied = await publisher.store.apply_receipts("wechat", [Receipt("msg-red", False, "msg-red:failed")],
                                                   time.time())
    assert applied["applied"] == 1
    return red.id


# The connections listening for this schema's queued deliveries (other tests' schemas run beside it).
LISTENERS = "FROM pg_stat_activity WHERE query = 'LISTEN ' || quote_ident(queued_channel())"


async def _listening(url: str) -> None:
    """Until a connection of the server listens for this schema's queued deliveries."""
    conn = await asyncpg.connect(url)
    try:
        async with asyncio.timeout(WITHIN):
            while not await conn.fetchval(f"SELECT COUNT(*) {LISTENERS}"):  # noqa: ASYNC110 - the server's state
                await asyncio.sleep(0.05)
    finally:
        await conn.close()


@contextlib.asynccontextmanager
async def _watched(settings: Settings) -> AsyncIterator[tuple[Service, asyncio.Queue[tuple[int, str | None]]]]:
    """A publishing service, and the wakes of another's watch of the queue, (priority, alert id): listening
    already (its first wake, for whatever was queued before it listened, taken)."""
    wakes: asyncio.Queue[tuple[int, str | None]] = asyncio.Queue()
    async with Service(settings) as publisher, Service(settings) as worker, \
            worker.store.backend.queue_watch(lambda priority, alert_id: wakes.put_nowait((priority, alert_id))):
        async with asyncio.timeout(WITHIN):
            await wakes.get()
        yield publisher, wakes


async def test_committed_delivery_rows_wake_a_listener_elsewhere_and_rolled_back_ones_do_not(
        make_settings: SettingsFactory, pg_schema_url: str) -> None:
    async with _watched(make_settings(database={"url": pg_schema_url})) as (publisher, wakes):
        await _subscribe(publisher, "https://hooks.example.org/a")
        red, _ = await publish_alert(publisher.store, RED_WARNING, None)
        assert red.targeted == 1
        async with asyncio.timeout(WITHIN):  # the highest priority the publish queued, and its alert
            assert await wakes.get() == (Priority.LIFE_SAFETY, red.id)
        try:  # a life-safety delivery row written in a transaction that does not commit
            async with publisher.store.backend.transaction() as db:
                assert await db.execute(_ANOTHER_CHANNEL, red.id) == 1
                raise LookupError
        except LookupError:
            pass
        notice, _ = await publish_alert(publisher.store, ROUTINE_NOTICE, None)
        async with asyncio.timeout(WITHIN):
            assert await wakes.get() == (Priority.ROUTINE, notice.id)
        # Notifications come in commit order: had the rolled-back one been sent, it would have come before.
        assert wakes.empty()


async def test_a_red_warnings_next_channel_queued_by_a_report_wakes_a_listener_elsewhere(
        make_settings: SettingsFactory, pg_schema_url: str) -> None:
    """The trigger tells of inserted rows alone: the store tells of the row a report queued again."""
    async with _watched(make_settings(database={"url": pg_schema_url})) as (publisher, wakes):
        red = await failed_by_report(publisher)
        async with asyncio.timeout(WITHIN):
            assert [await wakes.get() for _ in range(2)] == [(Priority.LIFE_SAFETY, red)] * 2  # published, fell back


@contextlib.asynccontextmanager
async def _worker_elsewhere(settings: SettingsFactory, url: str,
                            webhook: str) -> AsyncIterator[tuple[Service, Service]]:
    """A publishing service with one subscriber (at `webhook`), and a worker in another, listening already, that
    polls once an hour: only a notification can make it claim what is published."""
    publishing = settings(database={"url": url})
    working = settings(database={"url": url}, worker={"enabled": True, "poll_interval": 3600})
    async with Service(publishing) as publisher, Service(working) as worker:
        await _subscribe(publisher, webhook)
        worker.start_worker()
        await _listening(url)
        yield publisher, worker


async def _sent_once(receiver: RunningReceiver, path: str) -> None:
    """Until the receiver has the request at `path`; then that it has it once (a second send would have come)."""
    async with asyncio.timeout(WITHIN):
        while not receiver.requests_to(path):  # noqa: ASYNC110 - polling another component's state
            await asyncio.sleep(0.02)
    await asyncio.sleep(0.2)
    assert len(receiver.requests_to(path)) == 1


async def test_a_worker_in_another_process_sends_a_red_warning_without_waiting_for_its_poll(
        make_settings: SettingsFactory, pg_schema_url: str, receiver: RunningReceiver) -> None:
    async with _worker_elsewhere(make_settings, pg_schema_url, receiver.url_for("/red")) as (publisher, _):
        await asyncio.sleep(0.5)  # its loops' first claims, which found nothing, are over: they wait for the hour
        await publish_alert(publisher.store, RED_WARNING, None)
        await _sent_once(receiver, "/red")


async def test_a_red_warning_read_ahead_of_its_claim_in_vain_still_goes_out_once(
        make_settings: SettingsFactory, pg_schema_url: str, receiver: RunningReceiver) -> None:
    """A worker told of a life-safety alert reads it while it claims the rows (the notification names it); a name
    that leads nowhere (an alert gone since) costs nothing: the next red warning is read, claimed and sent."""
    async with _worker_elsewhere(make_settings, pg_schema_url, receiver.url_for("/red")) as (publisher, worker):
        worker.dispatcher.queued_rows(Priority.LIFE_SAFETY, "no-such-alert")
        await publish_alert(publisher.store, RED_WARNING, None)
        await _sent_once(receiver, "/red")


async def test_a_worker_whose_listening_connection_is_lost_listens_again(
        make_settings: SettingsFactory, pg_schema_url: str) -> None:
    """The server ends the connection (a restart, a failover): the worker connects again and is told again."""
    async with _watched(make_settings(database={"url": pg_schema_url})) as (publisher, wakes):
        conn = await asyncpg.connect(pg_schema_url)
        try:
            ended = await conn.fetchval(
                f"SELECT COUNT(*) FROM (SELECT pg_terminate_backend(pid) {LISTENERS}) e")  # noqa: S608 - ours
            assert ended == 1
        finally:
            await conn.close()
        async with asyncio.timeout(WITHIN):
            await wakes.get()  # listening again: once for what was queued while it was not
        await _subscribe(publisher, "https://hooks.example.org/b")
        await publish_alert(publisher.store, RED_WARNING, None)
        async with asyncio.timeout(WITHIN):
            await wakes.get()


async def test_a_watch_says_whether_it_listens(make_settings: SettingsFactory, pg_schema_url: str) -> None:
    """What a worker's routine claims go by (they leave red warnings to the life-safety claims only while the
    worker is told of each): listening once LISTEN is in place, not while a lost connection is made again."""
    wakes: asyncio.Queue[int] = asyncio.Queue()
    async with Service(make_settings(database={"url": pg_schema_url})) as worker:
        async with worker.store.backend.queue_watch(lambda priority, _: wakes.put_nowait(priority)) as watch:
            async with asyncio.timeout(WITHIN):
                await wakes.get()
            assert watch.listening
            conn = await asyncpg.connect(pg_schema_url)
            try:
                await conn.execute(f"SELECT pg_terminate_backend(pid) {LISTENERS}")
                async with asyncio.timeout(WITHIN):
                    while watch.listening:  # noqa: ASYNC110 - the server ends it; nothing of ours to wait on
                        await asyncio.sleep(0.01)
            finally:
                await conn.close()
            async with asyncio.timeout(WITHIN):
                await wakes.get()  # listening again
            assert watch.listening
        assert not watch.listening


async def test_routine_claims_of_a_listening_worker_leave_a_red_warning_to_life_safety_claims(
        make_settings: SettingsFactory, pg_schema_url: str) -> None:
    """A worker told of every row queued claims a red warning in a claim of its own, at once, not along with the
    hundreds of routine rows a routine claim takes (which would send it only after reading them all)."""
    async with Service(make_settings(database={"url": pg_schema_url})) as service:
        await _subscribe(service, "https://hooks.example.org/a")
        await publish_alert(service.store, RED_WARNING, None)
        now = time.time()
        assert await service.store.claim("routine", now, now + 60, 500, Priority.ROUTINE, Priority.URGENT) == []
        [red] = await service.store.claim("life-safety", now, now + 60, 500, Priority.LIFE_SAFETY)
        assert (red.channel, red.address) == ("webhook", "https://hooks.example.org/a")  # read as it was leased
        assert await service.store.claim("another", now, now + 60, 500, Priority.LIFE_SAFETY) == []


async def test_a_red_warning_being_stored_elsewhere_is_announced_before_its_rows_commit(
        make_settings: SettingsFactory, pg_schema_url: str) -> None:
    """The publisher tells the workers before its transaction, so that they stop starting routine sends while the
    warning is stored; the rows' own notification follows at the commit. A routine publish announces nothing."""
    settings = make_settings(database={"url": pg_schema_url})
    heard: asyncio.Queue[tuple[str, int]] = asyncio.Queue()
    async with Service(settings) as publisher, Service(settings) as worker, worker.store.backend.queue_watch(
            lambda priority, _: heard.put_nowait(("queued", priority)),
            lambda priority: heard.put_nowait(("coming", priority))):
        async with asyncio.timeout(WITHIN):
            assert await heard.get() == ("queued", 0)  # listening
        await _subscribe(publisher, "https://hooks.example.org/a")
        await publish_alert(publisher.store, ROUTINE_NOTICE, None)
        await publish_alert(publisher.store, RED_WARNING, None)
        async with asyncio.timeout(WITHIN):
            assert [await heard.get() for _ in range(3)] == [
                ("queued", Priority.ROUTINE), ("coming", Priority.LIFE_SAFETY), ("queued", Priority.LIFE_SAFETY)]


async def test_life_safety_rows_queued_elsewhere_pause_the_workers_routine_sending(
        make_settings: SettingsFactory, pg_schema_url: str) -> None:
    """As for a red warning published in the worker's own process: its routine loops start nothing new until the
    life-safety loop has claimed (`LifeSafetyWindow`); routine rows from elsewhere pause nothing."""
    working = make_settings(database={"url": pg_schema_url}, worker={"enabled": True, "poll_interval": 3600})
    async with Service(working) as worker:
        worker.start_worker()
        await _listening(pg_schema_url)  # its loops are running
        window = worker.dispatcher.window
        worker.dispatcher.queued_rows(Priority.ROUTINE)
        worker.dispatcher.coming_elsewhere(Priority.URGENT)
        assert not window.is_open
        worker.dispatcher.coming_elsewhere(Priority.LIFE_SAFETY)  # announced: open before the rows are stored
        assert window.is_open
        worker.dispatcher.queued_rows(Priority.LIFE_SAFETY)
        assert window.is_open


async def test_an_announced_red_warning_that_never_comes_pauses_routine_sending_only_briefly(
        make_settings: SettingsFactory, pg_schema_url: str) -> None:
    """Its publish failed after the announcement (a conflict, a lost connection): the window closes by itself
    (`HAND_OVER_SECONDS`), and routine sending goes on."""
    working = make_settings(database={"url": pg_schema_url}, worker={"enabled": True, "poll_interval": 3600})
    async with Service(working) as worker:
        worker.start_worker()
        await _listening(pg_schema_url)
        window = worker.dispatcher.window
        await worker.store.backend.announce(Priority.LIFE_SAFETY)  # as a publisher elsewhere would
        async with asyncio.timeout(WITHIN):
            while not window.is_open:  # noqa: ASYNC110 - the notification's arrival is the server's
                await asyncio.sleep(0.01)
            while window.is_open:  # noqa: ASYNC110 - closed by its own timer
                await asyncio.sleep(0.05)



async def test_an_announcement_the_server_refuses_is_a_warning_not_an_error(
        pg_schema_url: str, caplog: pytest.LogCaptureFixture) -> None:
    """The announcement is only a head start: a publish goes on when it fails (here: a schema without the channel's
    function, as a server might refuse a NOTIFY whose queue is full)."""
    backend = PgBackend(pg_schema_url.split("?")[0] + "?search_path=nowhere", min_size=1, max_size=1)
    await backend.open()
    try:
        with caplog.at_level(logging.WARNING, logger="notifier.store.pg_db"):
            await backend.announce(Priority.LIFE_SAFETY)
    finally:
        await backend.close()
    assert "cannot announce a life-safety publish (UndefinedFunctionError)" in caplog.text
