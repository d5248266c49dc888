"""Life-safety first (SPEC "Lifecycle", priority): a red warning published behind a routine backlog overtakes it,
and routine sends leave life-safety alerts a share of every provider's rate."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import pytest

from notifier.fakes.webhook_receiver import Reply, RunningReceiver
from notifier.models import AlertIn
from notifier.publish import publish_alert
from notifier.ratelimit import RateLimiter
from notifier.service import Service
from notifier.states import Priority
from notifier.store.records import SubscriberRecord
from subscriptions.contacts import generate_webhook_secret
from tests.conftest import SettingsFactory, settle

pytestmark = pytest.mark.both_backends  # SQLite and PostgreSQL (tests/conftest.py)

ROUTINE, RED = 1500, 20


def _subscribers(prefix: str, n: int, url: str) -> list[SubscriberRecord]:
    return [SubscriberRecord(id=f"{prefix}-{i:05d}", region="140402", locale="zh-CN", quiet_start=None,
                             quiet_end=None, status="active", consent_source="test", consent_at=0.0, created_at=0.0,
                             contacts={"webhook": url}, subscriptions=[(topic, ["webhook"], 0)])
            for i in range(n) for topic in [("env.heavy-pollution" if prefix == "red" else "transit.fare-change")]]


async def _routine_backlog(service: Service, receiver: RunningReceiver, routine: int, red: int,
                           stop: asyncio.Event) -> asyncio.Task[None]:
    """`routine` subscribers of a routine alert, published, and `red` subscribers of the red warning's topic; the
    dispatcher running until `stop`."""
    people = (_subscribers("routine", routine, receiver.url_for("/routine"))
              + _subscribers("red", red, receiver.url_for("/red")))
    await service.store.bulk_create_subscribers(people, [{"webhook": generate_webhook_secret()} for _ in people])
    await publish_alert(service.store, AlertIn(topic="transit.fare-change", headline="公交票价调整",
                                               severity="minor", urgency="future"), None)
    return asyncio.create_task(service.dispatcher.run(stop))


async def _until(condition: Callable[[], bool], timeout: float = 60.0) -> None:
    """Poll the receiver's record (it has no event to wait on) until `condition` holds."""
    async with asyncio.timeout(timeout):
        while not condition():  # noqa: ASYNC110 - polling another component's state, not our own event
            await asyncio.sleep(0.01)


@pytest.mark.slow
async def test_a_red_warning_overtakes_a_routine_backlog(make_settings: SettingsFactory,
                                                         receiver: RunningReceiver) -> None:
    """With 1,500 routine deliveries queued ahead, every red-warning delivery arrives while most of the routine
    backlog is still waiting."""
    receiver.script("/routine", [Reply(delay=0.01)] * ROUTINE)
    settings = make_settings(worker={"concurrency": 20, "claim_batch": 50})
    async with Service(settings) as service:
        stop = asyncio.Event()
        worker = await _routine_backlog(service, receiver, ROUTINE, RED, stop)
        await _until(lambda: len(receiver.requests_to("/routine")) >= 100)  # the backlog is being worked on
        await publish_alert(service.store, AlertIn(topic="env.heavy-pollution", headline="重污染天气红色预警",
                                                   severity="extreme", level="red"), None)
        service.dispatcher.wake()
        await _until(lambda: len(receiver.requests_to("/red")) >= RED)
        routine_by_then = len(receiver.requests_to("/routine"))
        stop.set()
        await worker
        await settle(service)
    assert routine_by_then < ROUTINE // 2, f"{routine_by_then} routine deliveries went before the red warning"


@pytest.mark.slow
async def test_a_red_warning_does_not_wait_for_routine_sends_in_flight(make_settings: SettingsFactory,
                                                                      receiver: RunningReceiver) -> None:
    """While every claim loop and send slot is held by slow routine sends, a red warning published then reaches
    its recipient before any of those routine requests has been answered."""
    slow = 1.0  # seconds the receiver holds each routine request (within the webhook timeout)
    receiver.script("/routine", [Reply(delay=slow)] * 64)
    settings = make_settings(worker={"concurrency": 20, "claim_batch": 16})
    async with Service(settings) as service:
        stop = asyncio.Event()
        worker = await _routine_backlog(service, receiver, 64, 1, stop)  # four claims of 16: every loop busy
        # Every routine slot holds its chunk (the routine share of 20 connections: 16 requests in flight).
        await _until(lambda: len(receiver.requests_to("/routine")) >= 16)
        await publish_alert(service.store, AlertIn(topic="env.heavy-pollution", headline="暴雨红色预警",
                                                   severity="extreme", level="red"), None)
        service.dispatcher.wake()
        await _until(lambda: len(receiver.requests_to("/red")) >= 1)
        first_routine = min(r.received_at for r in receiver.requests_to("/routine"))
        red_at = receiver.requests_to("/red")[0].received_at
        stop.set()
        await worker
        await settle(service)
    assert red_at < first_routine + slow, "the red warning waited for a routine request to be answered"


async def test_routine_sends_leave_a_share_of_the_rate_for_life_safety(service: Service) -> None:
    """After routine sends used up their share of a 10/s account, a routine send must wait and a life-safety
    send need not."""
    limiter = RateLimiter(service.store, "channel:sms", 10.0, reserve=0.2)
    for _ in range(8):  # the routine share of the one-second burst
        await limiter.acquire()
    routine_wait = await service.store.take_tokens(limiter.buckets(life_safety=False), 1.0)
    life_safety_wait = await service.store.take_tokens(limiter.buckets(life_safety=True), 1.0)
    assert routine_wait > 0.05
    assert life_safety_wait == 0.0


@pytest.mark.slow
async def test_no_routine_send_starts_while_life_safety_work_holds_the_window(make_settings: SettingsFactory,
                                                                             receiver: RunningReceiver) -> None:
    """While a red warning is being published (the window held), routine requests already in flight finish but no
    new one starts, so the event loop turns quickly for the warning; once it is let go, routine sending goes on."""
    receiver.script("/routine", [Reply(delay=0.02)] * 400)
    settings = make_settings(worker={"concurrency": 20, "claim_batch": 50})
    async with Service(settings) as service:
        stop = asyncio.Event()
        worker = await _routine_backlog(service, receiver, 400, 1, stop)
        await _until(lambda: len(receiver.requests_to("/routine")) >= 40)
        with service.dispatcher.window.held():
            await asyncio.sleep(0.2)  # the requests in flight arrive and are answered
            held_at = len(receiver.requests_to("/routine"))
            await asyncio.sleep(0.3)
            during = len(receiver.requests_to("/routine")) - held_at
        await _until(lambda: len(receiver.requests_to("/routine")) > held_at + 20)
        stop.set()
        await worker
        await settle(service)
    assert during == 0, f"{during} routine requests started while the window was held"
    assert held_at < 400, "the whole backlog went out before the window was held: the test proves nothing"


async def test_a_life_safety_claim_never_waits_for_the_window_it_holds(make_settings: SettingsFactory,
                                                                       receiver: RunningReceiver) -> None:
    """Rows queued as life-safety work are sent as such by the claim that holds the window for them, even where
    their alert alone would not say so (here a routine alert's rows raised by hand, as a repair might leave them):
    sent as routine work, they waited for the window — their own claim's — and every routine send behind them."""
    async with Service(make_settings(worker={"enabled": True})) as service:
        await service.store.bulk_create_subscribers(
            _subscribers("routine", 1, receiver.url_for("/raised")), [{"webhook": generate_webhook_secret()}])
        raised, _ = await publish_alert(service.store, AlertIn(topic="transit.fare-change", headline="公交票价调整",
                                                               severity="minor", urgency="future"), None)
        await service.store.backend.run(lambda db: db.execute(
            "UPDATE deliveries SET priority = ? WHERE alert_id = ?", int(Priority.LIFE_SAFETY), raised.id))
        service.start_worker()
        await _until(lambda: len(receiver.requests_to("/raised")) == 1)
        await publish_alert(service.store, AlertIn(topic="transit.fare-change", headline="公交票价恢复",
                                                   severity="minor", urgency="future"), None)
        await _until(lambda: len(receiver.requests_to("/raised")) == 2)


async def _answers_recorded_while_held(make_settings: SettingsFactory, receiver: RunningReceiver,
                                       held: float) -> tuple[int, int]:
    """A routine fan-out to a receiver that answers after 0.3 s, the window held for `held` seconds while requests
    are in flight: (answers recorded while it was held, after the first tenth of a second; all answers recorded)."""
    receiver.script("/routine", [Reply(delay=0.3)] * 400)
    # Claims of five, each one chunk: a claim's record waits for none of its chunks still to start.
    settings = make_settings(worker={"concurrency": 20, "claim_batch": 5})
    async with Service(settings) as service:
        stop = asyncio.Event()
        worker = await _routine_backlog(service, receiver, 400, 1, stop)
        alert = (await service.store.list_alerts(1, None))[0][0]

        async def delivered() -> int:
            return (await service.store.list_deliveries(alert.id, 1, None, "delivered"))[1]

        await _until(lambda: len(receiver.requests_to("/routine")) >= 40)
        with service.dispatcher.window.held():
            await asyncio.sleep(0.1)  # a record already under way when the window was held ends
            before = await delivered()
            await asyncio.sleep(held - 0.1)  # every request in flight is answered meanwhile
            during = await delivered() - before
        await _until(lambda: len(receiver.requests_to("/routine")) >= 400)
        stop.set()
        await worker
        await settle(service)
        return during, await delivered()


@pytest.mark.slow
async def test_routine_answers_that_come_while_life_safety_work_holds_the_window_are_recorded_after_it(
        make_settings: SettingsFactory, receiver: RunningReceiver) -> None:
    """Turning a routine chunk's answers into results is a long step of the event loop (1,000 numbers: milliseconds),
    which a red warning's steps would wait behind: answers that come while the window is held for a red warning's
    cycle are recorded once it is let go, and then all of them."""
    during, recorded = await _answers_recorded_while_held(make_settings, receiver, held=0.5)
    assert during == 0, f"{during} routine answers were recorded while the window was held"
    assert recorded == 400


@pytest.mark.slow
async def test_routine_answers_wait_for_the_window_a_second_at_most(make_settings: SettingsFactory,
                                                                     receiver: RunningReceiver) -> None:
    """A whole red fan-out holds the window for as long as it runs: routine answers already in wait no more than
    a second for it (sent and not recorded, they would be sent again after a crash)."""
    during, recorded = await _answers_recorded_while_held(make_settings, receiver, held=2.0)
    assert during > 0
    assert recorded == 400


async def test_a_red_warnings_retry_goes_out_when_it_is_due_not_at_the_next_poll(
        make_settings: SettingsFactory, receiver: RunningReceiver) -> None:
    """Nothing tells a worker that a retry has come due. The claim loops here poll once an hour: the life-safety
    loop waits only until the warning's retry is due, and sends it then."""
    receiver.script("/red", [503])
    settings = make_settings(worker={"poll_interval": 3600, "backoff_initial": 0.2, "backoff_max": 0.2})
    async with Service(settings) as service:
        people = _subscribers("red", 1, receiver.url_for("/red"))
        await service.store.bulk_create_subscribers(people, [{"webhook": generate_webhook_secret()}])
        stop = asyncio.Event()
        worker = asyncio.create_task(service.dispatcher.run(stop))
        await publish_alert(service.store, AlertIn(topic="env.heavy-pollution", headline="重污染天气红色预警",
                                                   severity="extreme", level="red"), None)
        service.dispatcher.wake()
        try:
            await _until(lambda: len(receiver.requests_to("/red")) >= 2, timeout=30)
        finally:
            stop.set()
            service.dispatcher.wake()  # the idle loops see `stop` now rather than after their hour
            await worker
            await settle(service)
    assert len(receiver.requests_to("/red")) == 2  # the 503, then the retry (the same delivery's id)
    assert len({r.webhook_id for r in receiver.requests_to("/red")}) == 1
