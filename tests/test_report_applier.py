"""Delivery reports are stored when they come and applied after (`notifier/report_applier.py`): once the process is
not sending, on SQLite once the writer has nothing of the sends' to do, or once a report has waited its patience; a
request waits for its reports to count unless the applier is behind; what a stopped process stored is applied by the
next; the silent fallback does not take a delivery whose report may be waiting for silent; erasure takes the
waiting reports' numbers too."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from typing import Any

import pytest

from channels.base import Receipt
from notifier.models import AlertIn
from notifier.publish import publish_alert
from notifier.report_applier import ReportApplier
from notifier.service import Service
from notifier.states import DeliveryStatus
from notifier.store import Store, fallback, receipts
from notifier.store.receipts import Applied
from notifier.subscribers import create_subscriber
from subscriptions.models import SubscriberIn
from tests.conftest import SettingsFactory, SubscriberFactory
from tests.store.recording import a_push, claimed_and_recorded, sent_by_sms, three_people, warned


class SlowStore:
    """A store whose reports wait: applied with `idle` only once the test lets them go (the writer busy with
    sends), at once otherwise; every call's `idle` noted."""

    def __init__(self) -> None:
        self.calls: list[bool] = []
        self.go = asyncio.Event()
        self.life_safety_calls = 0  # looks for the pushes a life-safety delivery awaits

    async def apply_waiting(self, redial: Mapping[str, object], limit: int, *, idle: bool = False,
                            life_safety: bool = False) -> Applied:
        if life_safety:
            self.life_safety_calls += 1
            return Applied([], more=False, requeued={})
        self.calls.append(idle)
        if idle:
            await self.go.wait()
        return Applied([], more=False, requeued={})


@pytest.fixture
async def slow() -> AsyncIterator[tuple[SlowStore, list[ReportApplier]]]:
    store, appliers = SlowStore(), []
    yield store, appliers
    for applier in appliers:
        await applier.close()


def _applier(slow: tuple[SlowStore, list[ReportApplier]], **options: Any) -> ReportApplier:
    applier = ReportApplier(slow[0], **options)  # type: ignore[arg-type]
    slow[1].append(applier)
    return applier


async def test_reports_that_waited_their_patience_go_in_turn_with_the_sends(
        slow: tuple[SlowStore, list[ReportApplier]]) -> None:
    """The writer stays busy with sends: the reports wait as long as the applier's patience, then are applied in
    turn with the sends (no longer `idle`)."""
    store, applier = slow[0], _applier(slow, patience=0.05)
    await asyncio.wait_for(applier.applied(applier.stored()), 5)
    assert store.calls == [True, False]


async def test_reports_wait_while_the_process_sends(slow: tuple[SlowStore, list[ReportApplier]]) -> None:
    """While a fan-out's sends are under way, stored reports are not applied; once they are over, they are."""
    store, sending = slow[0], [True]

    async def under_way(*, life_safety: bool = False) -> bool:
        return sending[0]

    applier = _applier(slow, sending=under_way)
    applier.stored()
    await asyncio.sleep(0.3)
    assert store.calls == []
    sending[0] = False
    store.go.set()
    for _ in range(100):
        if store.calls:
            break
        await asyncio.sleep(0.02)
    assert store.calls == [True]


async def _routine(*, life_safety: bool = False) -> bool:
    """A routine fan-out's sends are under way."""
    return not life_safety


async def test_a_push_a_life_safety_delivery_awaits_goes_before_routine_sends(
        slow: tuple[SlowStore, list[ReportApplier]]) -> None:
    """A push holding a red warning's report comes while a routine fan-out sends: it is applied at once, in turn with
    the sends, before the routine pushes — those still wait for the sends."""
    store, applier = slow[0], _applier(slow, sending=_routine)
    applier.stored()
    applier.stored(life_safety=True)
    for _ in range(100):
        if store.life_safety_calls:
            break
        await asyncio.sleep(0.02)
    await asyncio.sleep(0.3)
    assert (store.life_safety_calls, store.calls) == (1, [])


async def test_a_push_a_life_safety_delivery_awaits_waits_for_a_life_safety_fan_outs_sends(
        slow: tuple[SlowStore, list[ReportApplier]]) -> None:
    """A red warning to a whole city is being sent: everyone's first channel goes before anyone's next, so the
    pushes its deliveries await wait for its sends as a routine fan-out's do."""
    store = slow[0]

    async def red_fan_out(*, life_safety: bool = False) -> bool:
        return True

    applier = _applier(slow, sending=red_fan_out)
    applier.stored(life_safety=True)
    await asyncio.sleep(0.3)
    assert (store.life_safety_calls, store.calls) == (0, [])


async def test_routine_pushes_wait_for_routine_sends(slow: tuple[SlowStore, list[ReportApplier]]) -> None:
    """No push holds a life-safety delivery's report: a routine fan-out's reports wait for its sends."""
    store, applier = slow[0], _applier(slow, sending=_routine)
    applier.stored()
    await asyncio.sleep(0.3)
    assert (store.life_safety_calls, store.calls) == (0, [])


async def test_a_request_waits_for_its_reports_only_while_the_applier_keeps_up(
        slow: tuple[SlowStore, list[ReportApplier]]) -> None:
    """A request whose reports do not count within `answer_within` is answered all the same; while the applier is
    behind the next one is answered without waiting; once it has caught up, requests wait for their reports again."""
    store, applier = slow[0], _applier(slow, answer_within=0.2)
    await asyncio.wait_for(applier.applied(applier.stored()), 5)  # answered, the reports still waiting
    assert store.calls == [True] and applier.behind
    second = asyncio.create_task(applier.applied(applier.stored()))
    await _turns()
    assert second.done()  # behind: no wait at all
    store.go.set()
    for _ in range(100):
        if not applier.behind:
            break
        await asyncio.sleep(0.01)
    store.go.clear()
    third = asyncio.create_task(applier.applied(applier.stored()))
    await _turns()
    assert not third.done()  # its reports are being applied
    store.go.set()
    await asyncio.wait_for(third, 5)


async def _turns() -> None:
    """Let every task started so far run until it waits."""
    for _ in range(5):
        await asyncio.sleep(0)


@asynccontextmanager
async def texts_sent(make_settings: SettingsFactory) -> AsyncIterator[tuple[Store, list[Receipt]]]:
    """`three_people` warned under `fallback` (60 s to confirm), their texts sent as m0, m1 and m2; the store, and
    a push of their reports (`a_push`: m0 delivered, m1 failed, m2 by a request's id and number)."""
    async with three_people(make_settings()) as store:
        store.number_key = b"k" * 32
        await warned(store, "fallback")
        async with store.backend.transaction() as db:
            await claimed_and_recorded(db, DeliveryStatus.SENT, "fallback")
            push = await a_push(db)
        yield store, push


async def _status(store: Store, provider_message_id: str) -> str:
    return str(await store.backend.reader.fetchval(
        "SELECT status FROM deliveries WHERE provider_message_id = ?", provider_message_id))


@pytest.mark.both_backends
async def test_reports_a_stopped_process_stored_are_applied_by_the_next_applier(
        make_settings: SettingsFactory) -> None:
    """Three reports stored, and the process stops before applying them: they wait, nothing settled; the next
    applier started applies them in the order they came."""
    async with texts_sent(make_settings) as (store, push):
        await store.store_reports("sms", push, time.time())
        assert [await _status(store, m) for m in ("m0", "m1", "m2")] == ["sent"] * 3
        applier = ReportApplier(store)
        applier.start()
        try:
            for _ in range(200):
                if await _status(store, "m2") != "sent":
                    break
                await asyncio.sleep(0.02)
        finally:
            await applier.close()
        assert [await _status(store, m) for m in ("m0", "m1", "m2")] == ["delivered", "failed", "delivered"]
        assert await store.backend.reader.fetchval("SELECT COUNT(*) FROM report_pushes") == 0


@pytest.mark.both_backends
async def test_a_delivery_is_not_silent_while_a_report_that_came_in_its_window_waits(
        make_settings: SettingsFactory) -> None:
    """A fallback warning's texts sent, each with 60 s to be confirmed; a report came for one and waits to be
    applied. Past the window, no next channel is tried while it waits (it may be anyone's); once applied, the two
    others' emails go out and the confirmed person's does not."""
    async with texts_sent(make_settings) as (store, _):
        await store.store_reports("sms", [Receipt("m0", True, "r0")], time.time())
        later = time.time() + 120
        async with store.backend.transaction() as db:
            await fallback.activate_silent(db, later, fallback.Requeued())
        assert await store.backend.reader.fetchval(
            "SELECT COUNT(*) FROM deliveries WHERE channel = 'email' AND status = 'queued'") == 0
        await store.apply_waiting({}, 100)
        async with store.backend.transaction() as db:
            await fallback.activate_silent(db, later, fallback.Requeued())
        assert await store.backend.reader.fetchval(
            "SELECT COUNT(*) FROM deliveries WHERE channel = 'email' AND status = 'queued'") == 2


@pytest.mark.both_backends
async def test_erasure_takes_the_number_a_waiting_report_names(make_settings: SettingsFactory) -> None:
    """A report naming a person's number waits to be applied when the person asks to be forgotten: it goes with
    them, number and all."""
    async with texts_sent(make_settings) as (store, push):
        person = await store.backend.reader.fetchval(
            "SELECT subscriber_id FROM deliveries WHERE provider_message_id = 'm2'")
        await store.store_reports("sms", push, time.time())
        assert await store.forget_subscriber(str(person))
        [kept] = await store.backend.reader.fetch("SELECT reports FROM report_pushes")
        assert str(push[2].address) not in kept[0]
        assert [r[2] for r in json.loads(kept[0])] == ["r0", "r1"]  # the others' reports still wait


@pytest.mark.both_backends
async def test_a_report_sent_twice_and_applied_twice_at_once_settles_its_delivery_once(
        make_settings: SettingsFactory) -> None:
    """The provider sent one report twice, and its second push comes while the first is being applied — on
    PostgreSQL applied by another process at once: the delivery is delivered once, its person reached once, the
    report stored once, and the second applier counts its copy a repeat."""

    async def again() -> Applied:
        await store.store_reports("sms", push[:1], time.time())
        return await store.apply_waiting({}, 1)

    async with texts_sent(make_settings) as (store, push):
        await store.store_reports("sms", push[:1], time.time())
        async with store.backend.transaction() as db:
            first = await receipts.apply_waiting(db, time.time(), store.number_key, {}, 1)
            second = asyncio.create_task(again())
            await asyncio.sleep(0.3)  # the second waits for the first's commit: the same delivery, the same key
            assert not second.done()
        assert [outcomes for *_, outcomes in first.pushes] == [["applied"]]
        assert [outcomes for *_, outcomes in (await second).pushes] == [["duplicate"]]
        assert await _status(store, "m0") == "delivered"
        assert await store.backend.reader.fetchval("SELECT COUNT(*) FROM receipts WHERE channel = 'sms'") == 1
        assert await store.backend.reader.fetchval("SELECT COUNT(*) FROM alert_targets WHERE reached_at IS NOT NULL"
                                                   ) == 1


@pytest.mark.both_backends
async def test_a_push_is_told_apart_while_a_red_warning_awaits_its_report(
        service: Service, make_subscriber: SubscriberFactory) -> None:
    """A push that holds the report a red warning's text awaits, the warning released since the time asked about, is
    a life-safety push; released before it, or its report in, it is not."""
    await make_subscriber(contacts={"sms": "+8613800000301"})
    before = time.time() - 1
    await sent_by_sms(service.store, "extreme", "msg-1")
    report = [Receipt("msg-1", True, "msg-1:delivered")]
    assert await service.store.store_reports("sms", report, time.time(), before)
    assert not await service.store.store_reports("sms", report, time.time(), time.time() + 1)
    assert not await service.store.store_reports("sms", [Receipt("msg-2", True, "msg-2:delivered")], time.time(),
                                                 before)
    await service.store.apply_receipts("sms", report, time.time())
    assert not await service.store.store_reports("sms", report, time.time(), before)


@pytest.mark.both_backends
async def test_a_routine_notices_report_is_no_life_safety_push(
        service: Service, make_subscriber: SubscriberFactory) -> None:
    await make_subscriber(contacts={"sms": "+8613800000302"})
    before = time.time() - 1
    await sent_by_sms(service.store, "minor", "msg-1")
    assert not await service.store.store_reports("sms", [Receipt("msg-1", True, "msg-1:delivered")], time.time(),
                                                 before)


@pytest.mark.both_backends
async def test_the_life_safety_pushes_are_applied_before_older_ones(
        service: Service, make_subscriber: SubscriberFactory) -> None:
    """A routine push came first; the red warning's after it: taken alone, the red warning's is applied, and the
    routine one still waits."""
    await make_subscriber(contacts={"sms": "+8613800000303"})
    await service.store.store_reports("sms", [Receipt("msg-0", True, "msg-0:delivered")], time.time())
    before = time.time() - 1
    await sent_by_sms(service.store, "extreme", "msg-1")
    assert await service.store.store_reports("sms", [Receipt("msg-1", False, "msg-1:failed")], time.time(), before)
    done = await service.store.apply_waiting({}, 100, life_safety=True)
    assert [outcomes for _, _, outcomes in done.pushes] == [["applied"]] and not done.more
    left = await service.store.apply_waiting({}, 100)
    assert [outcomes for _, _, outcomes in left.pushes] == [["unknown"]]


@pytest.mark.both_backends
async def test_a_process_that_does_not_deliver_tells_a_life_safety_fan_out_from_a_routine_one(
        make_settings: SettingsFactory) -> None:
    """`notifier serve` beside a `notifier worker` asks the store: a claim's worth of deliveries due is a fan-out
    under way, a life-safety one only when they are life-safety rows."""
    async with Service(make_settings(worker={"claim_batch": 2})) as service:
        for n in range(2):
            body = SubscriberIn.model_validate({
                "contacts": {"sms": f"+86138000004{n:02d}"}, "region": "140402",
                "subscriptions": [{"topic": "env.heavy-pollution", "channels": ["sms"]}]})
            await create_subscriber(service.store, body, allow_private_webhooks=False)
        await publish_alert(service.store, AlertIn(topic="env.heavy-pollution", headline="空气质量预报",
                                                   severity="minor"), None)
        assert await service.dispatcher.sending()
        assert not await service.dispatcher.sending(life_safety=True)
        await publish_alert(service.store, AlertIn(topic="env.heavy-pollution", headline="重污染天气红色预警",
                                                   severity="extreme"), None)
        assert await service.dispatcher.sending(life_safety=True)
