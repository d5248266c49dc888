"""A red warning is claimed as soon as it is stored, even when the life-safety claim loop was just then looking for
work and found none yet: its wake-up is not lost, and it does not wait for the next poll (SQLite: the loop's idle
claim can wait in the writer's queue behind the red warning's own publish, which goes first, and then find nothing
due at the time it was asked)."""

from __future__ import annotations

import asyncio
import threading

from notifier.fakes.webhook_receiver import RunningReceiver
from notifier.models import AlertIn
from notifier.publish import publish_alert
from notifier.service import Service
from notifier.store.db import Db
from notifier.store.records import SubscriberRecord
from subscriptions.contacts import generate_webhook_secret
from tests.conftest import SettingsFactory, settle

POLL = 30.0  # seconds between the claim loops' idle polls: far longer than the test may take


async def test_a_red_warning_stored_while_the_life_safety_loop_looks_for_work_is_sent_at_once(
        make_settings: SettingsFactory, receiver: RunningReceiver) -> None:
    settings = make_settings(worker={"poll_interval": POLL})
    async with Service(settings) as service:
        person = SubscriberRecord(id="red-1", region="140402", locale="zh-CN", quiet_start=None, quiet_end=None,
                                  status="active", consent_source="test", consent_at=0.0, created_at=0.0,
                                  contacts={"webhook": receiver.url_for("/red")},
                                  subscriptions=[("env.heavy-pollution", ["webhook"], 0)])
        await service.store.bulk_create_subscribers([person], [{"webhook": generate_webhook_secret()}])
        stop = asyncio.Event()
        worker = asyncio.create_task(service.dispatcher.run(stop))
        await asyncio.sleep(0.2)  # the loops' first polls found nothing: they now wait POLL seconds
        # The writer is busy (a bulk write in progress, say) when the loops are woken and look for work again:
        # their claims wait for it, and so does the red warning's publish, which then goes first.
        started, release = threading.Event(), threading.Event()

        async def busy(db: Db) -> None:
            await db.fetchval("SELECT 1")
            started.set()
            release.wait(10)

        holding = asyncio.create_task(service.store.backend.run(busy))
        assert await asyncio.to_thread(started.wait, 10)
        service.dispatcher.wake()
        await asyncio.sleep(0.05)
        publishing = asyncio.create_task(publish_alert(
            service.store, AlertIn(topic="env.heavy-pollution", headline="重污染天气红色预警", severity="extreme",
                                   level="red"), None))
        await asyncio.sleep(0.05)
        release.set()
        await publishing
        service.dispatcher.wake()  # as the API does once the publish is stored
        try:
            async with asyncio.timeout(POLL / 3):
                while not receiver.requests_to("/red"):  # noqa: ASYNC110 - polling another component's state
                    await asyncio.sleep(0.01)
        finally:
            stop.set()
            service.dispatcher.wake()  # the idle loops see `stop` now rather than after their poll
            await asyncio.gather(holding, worker)
            await settle(service)
    assert len(receiver.requests_to("/red")) == 1
