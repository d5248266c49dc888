"""`send_each`, how every channel with one request per recipient (webhook, WeChat, voice) sends a batch: all at
once, one result per recipient, a bug for one never costs the others, a send over the time limit is stopped as
timed out, and a cancelled batch stops every send."""

from __future__ import annotations

import asyncio

import pytest

from channels.base import DeliveryResult, Outcome, Recipient, send_each
from channels.webhook import classify


def recipients(n: int) -> list[Recipient]:
    return [Recipient(delivery_id=f"d{i}", subscriber_id=f"s{i}", address=f"https://example.org/{i}")
            for i in range(n)]


async def test_every_recipient_is_sent_to_at_once() -> None:
    """The first recipient's send waits for the last one's to have started: only concurrent sends finish."""
    batch = recipients(5)
    last_started = asyncio.Event()

    async def send(r: Recipient) -> DeliveryResult:
        if r is batch[-1]:
            last_started.set()
        await asyncio.wait_for(last_started.wait(), timeout=5)
        return DeliveryResult(r.delivery_id, Outcome.DELIVERED)

    results = await send_each(batch, send, kind="webhook")

    assert [r.delivery_id for r in results] == ["d0", "d1", "d2", "d3", "d4"]
    assert {r.outcome for r in results} == {Outcome.DELIVERED}


async def test_results_come_back_in_the_recipients_order_whatever_finishes_first() -> None:
    batch = recipients(4)

    async def send(r: Recipient) -> DeliveryResult:
        await asyncio.sleep(0.01 * (4 - int(r.delivery_id[1:])))  # the last recipient finishes first
        return DeliveryResult(r.delivery_id, Outcome.DELIVERED)

    results = await send_each(batch, send, kind="webhook")

    assert [r.delivery_id for r in results] == ["d0", "d1", "d2", "d3"]


async def test_a_bug_for_one_recipient_is_its_result_and_the_others_are_delivered(
        caplog: pytest.LogCaptureFixture) -> None:
    batch = recipients(3)

    async def send(r: Recipient) -> DeliveryResult:
        if r.delivery_id == "d1":
            raise KeyError(r.address)
        await asyncio.sleep(0.01)
        return DeliveryResult(r.delivery_id, Outcome.DELIVERED)

    results = await send_each(batch, send, kind="webhook")

    assert [r.outcome for r in results] == [Outcome.DELIVERED, Outcome.TRANSIENT, Outcome.DELIVERED]
    assert results[1].error == "internal error (KeyError)"
    assert "d1" in caplog.text and "example.org" not in caplog.text  # named by delivery, never by address


async def test_cancelling_the_batch_stops_every_send_still_running() -> None:
    batch = recipients(4)
    started = 0
    all_started = asyncio.Event()
    stopped: list[str] = []
    finished: list[str] = []

    async def send(r: Recipient) -> DeliveryResult:
        nonlocal started
        started += 1
        if started == len(batch):
            all_started.set()
        try:
            await asyncio.sleep(0 if r.delivery_id == "d0" else 30)
        except asyncio.CancelledError:
            stopped.append(r.delivery_id)
            raise
        finished.append(r.delivery_id)
        return DeliveryResult(r.delivery_id, Outcome.DELIVERED)

    batch_task = asyncio.create_task(send_each(batch, send, kind="webhook"))
    await asyncio.wait_for(all_started.wait(), timeout=5)
    await asyncio.sleep(0.01)  # d0 finishes; the others are in their sleep
    batch_task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await batch_task
    await asyncio.sleep(0)  # the cancelled sends run their handlers

    assert finished == ["d0"]
    assert sorted(stopped) == ["d1", "d2", "d3"]


async def test_a_send_still_running_at_the_time_limit_is_stopped_as_timed_out() -> None:
    """One timer for the batch: the sends that answered in time keep their results, the one that hangs is stopped
    and reported as a timeout (transient: it is retried), and the batch returns at the limit, not the hang's end."""
    batch = recipients(3)
    stopped: list[str] = []

    async def send(r: Recipient) -> DeliveryResult:
        try:
            await asyncio.sleep(30 if r.delivery_id == "d1" else 0.01)
        except asyncio.CancelledError:
            stopped.append(r.delivery_id)
            raise
        return DeliveryResult(r.delivery_id, Outcome.DELIVERED)

    loop = asyncio.get_running_loop()
    started = loop.time()
    results = await send_each(batch, send, kind="webhook", on_error=classify, timeout=0.2)

    assert loop.time() - started < 5
    assert stopped == ["d1"]
    assert [(r.delivery_id, r.outcome, r.error) for r in results] == [
        ("d0", Outcome.DELIVERED, None), ("d1", Outcome.TRANSIENT, "timeout"), ("d2", Outcome.DELIVERED, None)]


async def test_cancelling_a_batch_is_a_cancellation_even_after_its_time_limit() -> None:
    """A worker shutting down cancels its batch: that stops it — it is not written down as timeouts to retry —
    even when the time limit has already stopped the sends, which take a moment to wind down."""
    batch = recipients(2)
    winding_down = asyncio.Event()

    async def send(r: Recipient) -> DeliveryResult:
        try:
            await asyncio.sleep(30)
        except asyncio.CancelledError:
            winding_down.set()
            await asyncio.sleep(0.2)  # closing its connection, say
            raise
        return DeliveryResult(r.delivery_id, Outcome.DELIVERED)

    batch_task = asyncio.create_task(send_each(batch, send, kind="webhook", on_error=classify, timeout=0.05))
    await asyncio.wait_for(winding_down.wait(), timeout=5)  # the time limit has fired
    batch_task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await batch_task
