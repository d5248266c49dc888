"""What wakes a worker's loops in its own process (`Dispatcher.wake`, `queued`): a red warning the life-safety loop,
at once or, scheduled, when it is due; a routine alert's rows — a small publish's, or a large one's added a slice at a
time after its answer — the routine loops alone, so that the life-safety loop runs no empty claim on the store for
each; work that names no alert both, since it could be anything. The workers here look for work once an hour unless
woken: only a wake moves them."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from notifier.fakes.webhook_receiver import RunningReceiver
from notifier.models import AlertIn
from notifier.publish import publish_alert
from notifier.service import Service
from notifier.states import Priority
from tests.conftest import SettingsFactory, SubscriberFactory

pytestmark = pytest.mark.both_backends  # SQLite and PostgreSQL (tests/conftest.py)

WITHIN = 15.0  # seconds: how long a test waits for what must come (a loaded CI machine), never a speed claim
RED_WARNING = AlertIn(topic="env.heavy-pollution", headline="重污染天气红色预警", severity="extreme",
                      urgency="immediate", level="red")
FORECAST = AlertIn(topic="env.heavy-pollution", headline="空气质量预报", severity="minor", urgency="expected")
PEOPLE = 5


@pytest.fixture
async def worker(make_settings: SettingsFactory) -> AsyncIterator[Service]:
    """A serving process whose loops look once an hour unless woken; a publish to three people or more answers
    before its rows exist, which are added two people a transaction (`Store.finish_fan_out`)."""
    settings = make_settings(database={"deliveries_after_answer_from": 3, "fan_out_slice": 2},
                             worker={"enabled": True, "poll_interval": 3600})
    async with Service(settings) as running:
        yield running


async def _people(make_subscriber: SubscriberFactory, receiver: RunningReceiver) -> None:
    for n in range(PEOPLE):
        await make_subscriber(contacts={"webhook": receiver.url_for(f"/p{n}")})


async def _all_sent(receiver: RunningReceiver) -> None:
    async with asyncio.timeout(WITHIN):
        while sum(bool(receiver.requests_to(f"/p{n}")) for n in range(PEOPLE)) < PEOPLE:  # noqa: ASYNC110 - another component's state
            await asyncio.sleep(0.02)


def _life_safety_claims(service: Service) -> list[float]:
    """The moments the life-safety loop claims from the store from now on (its claims alone ask for life-safety
    rows and nothing lower)."""
    claims: list[float] = []
    claim = service.store.claim

    async def counted(owner: str, now: float, *args: Any, **kwargs: Any) -> Any:
        min_priority = args[2] if len(args) > 2 else kwargs.get("min_priority", 0)
        if min_priority >= Priority.LIFE_SAFETY and not kwargs.get("background"):
            claims.append(now)
        return await claim(owner, now, *args, **kwargs)

    service.store.claim = counted  # type: ignore[method-assign]
    return claims


async def _started(worker: Service) -> None:
    worker.start_worker()
    await asyncio.sleep(0.5)  # its loops have looked once, found nothing, and wait for the hour or a wake


@pytest.mark.parametrize(("warning", "life_safety"), [(FORECAST, False), (RED_WARNING, True)],
                         ids=["routine", "red"])
async def test_a_large_publishs_slices_wake_the_life_safety_loop_for_a_red_warning_alone(
        worker: Service, make_subscriber: SubscriberFactory, receiver: RunningReceiver, warning: AlertIn,
        life_safety: bool) -> None:
    """Five people, three slices of rows after the answer: all sent; the life-safety loop claimed the red
    warning's, and never looked for the forecast's."""
    await _people(make_subscriber, receiver)
    await _started(worker)
    claims = _life_safety_claims(worker)
    alert, _ = await publish_alert(worker.store, warning, None)
    worker.dispatcher.wake(alert)  # as the API does after a publish
    await _all_sent(receiver)
    assert bool(claims) is life_safety


async def test_a_red_warning_scheduled_in_this_process_is_sent_when_due_not_at_the_hourly_look(
        worker: Service, make_subscriber: SubscriberFactory, receiver: RunningReceiver) -> None:
    """Woken by its publish, the life-safety loop sleeps until the warning is due rather than for the hour."""
    await make_subscriber(contacts={"webhook": receiver.url_for("/scheduled")})
    await _started(worker)
    soon = datetime.now(UTC) + timedelta(seconds=1)
    scheduled, _ = await publish_alert(worker.store, RED_WARNING.model_copy(update={"scheduled_at": soon}), None)
    assert scheduled.status == "scheduled"
    worker.dispatcher.wake(scheduled)
    async with asyncio.timeout(WITHIN):
        while not receiver.requests_to("/scheduled"):  # noqa: ASYNC110 - another component's state
            await asyncio.sleep(0.02)


async def test_work_that_names_no_alert_wakes_the_life_safety_loop_too(worker: Service) -> None:
    """What was queued while PostgreSQL's listening connection was lost, say: it could be a red warning."""
    await _started(worker)
    claims = _life_safety_claims(worker)
    worker.dispatcher.queued_rows(Priority.ROUTINE)
    async with asyncio.timeout(WITHIN):
        while not claims:  # noqa: ASYNC110 - the loop's own task
            await asyncio.sleep(0.02)


async def test_a_routine_alerts_rows_queued_by_another_process_wake_the_routine_loops_alone(
        make_settings: SettingsFactory, worker: Service, make_subscriber: SubscriberFactory,
        receiver: RunningReceiver) -> None:
    """Another process on the same database publishes to five people, its rows added in three slices: each tells the
    worker by name (`Backend.queue_watch`), and the routine loops send them."""
    await _people(make_subscriber, receiver)
    await _started(worker)
    claims = _life_safety_claims(worker)
    async with Service(make_settings(database={"deliveries_after_answer_from": 3, "fan_out_slice": 2})) as other:
        await publish_alert(other.store, FORECAST, None)
        await other.store.fanned_out()
    await _all_sent(receiver)
    assert claims == []
