"""The channel contract: every channel — webhook, email, SMS (Aliyun, Tencent), WeChat, voice (Aliyun, Tencent) —
goes through the same cases against its bundled fake gateway over real HTTP/SMTP on loopback, driven by the real
dispatcher, with receipts pushed back to the real web app. The per-channel plumbing is in
tests/channels/contract_harness.py."""

from __future__ import annotations

import math
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest

from tests.channels.contract_harness import CHANNELS, ChannelUnderTest, Rig, close_rig, open_rig
from tests.conftest import SettingsFactory

RigFactory = Callable[..., Awaitable[Rig]]

BATCH, SUBSCRIBERS = 3, 7  # a max_batch smaller than the audience: the dispatcher must split
RATE, SENDS = 5.0, 12  # requests per second, and enough requests that the limit has to shape them
BURST = RATE  # the dispatcher's token bucket holds one second's worth (notifier.ratelimit)


@pytest.fixture(params=list(CHANNELS))
def channel(request: pytest.FixtureRequest) -> ChannelUnderTest:
    """Each channel kind in turn, its fake not started yet."""
    return CHANNELS[request.param]()


@pytest.fixture
async def make_rig(channel: ChannelUnderTest, make_settings: SettingsFactory) -> AsyncIterator[RigFactory]:
    """Yields `create(**limits)`: the service on the channel's fake with `limits` in its section, receipts wired."""
    rigs: list[Rig] = []

    async def create(**limits: Any) -> Rig:
        rigs.append(await open_rig(channel, make_settings, **limits))
        return rigs[-1]

    yield create
    for rig in rigs:
        await close_rig(rig)


async def test_success_reaches_the_subscriber(make_rig: RigFactory) -> None:
    """One subscriber, one message: delivered (after the receipt where there is one) and counted as reached."""
    rig = await make_rig()
    await rig.subscribe(0)
    alert_id = await rig.publish()
    rows = await rig.until_finished(alert_id)
    assert [(r.status, r.attempts) for r in rows] == [("delivered", 1)]
    assert rig.channel.messages_seen() == 1
    assert (await rig.coverage(alert_id)).reached == 1


async def test_a_transient_failure_is_retried_then_delivered(make_rig: RigFactory) -> None:
    """A first attempt that fails transiently is retried, and the second attempt delivers."""
    rig = await make_rig()
    rig.channel.fail_transiently_once(0)
    await rig.subscribe(0)
    alert_id = await rig.publish()
    rows = await rig.until_finished(alert_id)
    assert [(r.status, r.attempts) for r in rows] == [("delivered", 2)]
    assert rig.channel.messages_seen() == 1
    assert (await rig.coverage(alert_id)).reached == 1


async def test_a_permanent_failure_is_final_at_once(make_rig: RigFactory) -> None:
    """A permanent refusal fails the delivery after one attempt; no retry reaches the fake (it would accept it)."""
    rig = await make_rig()
    rig.channel.fail_permanently_once(0)
    await rig.subscribe(0)
    alert_id = await rig.publish()
    await rig.settle()
    rows = await rig.deliveries(alert_id)
    assert [(r.status, r.attempts) for r in rows] == [("failed", 1)]
    assert rows[0].last_error
    assert rig.channel.messages_seen() == 0
    assert (await rig.coverage(alert_id)).reached == 0


async def test_a_batch_larger_than_max_batch_is_split(make_rig: RigFactory) -> None:
    """More recipients than max_batch: everyone is delivered, in ceil(n / max_batch) requests for batch channels."""
    rig = await make_rig(max_batch=BATCH)
    for i in range(SUBSCRIBERS):
        await rig.subscribe(i)
    alert_id = await rig.publish()
    rows = await rig.until_finished(alert_id)
    assert [r.status for r in rows] == ["delivered"] * SUBSCRIBERS
    assert rig.channel.messages_seen() == SUBSCRIBERS
    expected = SUBSCRIBERS if rig.channel.per_recipient_requests else math.ceil(SUBSCRIBERS / BATCH)
    assert rig.channel.requests_seen() == expected
    assert (await rig.coverage(alert_id)).reached == SUBSCRIBERS


def _busiest_second(times: list[float]) -> int:
    """The most requests the fake received within any one-second window."""
    ordered = sorted(times)
    return max(sum(1 for t in ordered[i:] if t < start + 1.0) for i, start in enumerate(ordered))


async def test_the_rate_limit_shapes_the_sends(make_rig: RigFactory, channel: ChannelUnderTest,
                                               request: pytest.FixtureRequest) -> None:
    """With rate_per_second set, no second of the fake's own clock sees more than rate + burst requests."""
    rig = await make_rig(**channel.rate_limits(RATE))
    for i in range(SENDS):
        await rig.subscribe(i)
    alert_id = await rig.publish()
    rows = await rig.until_finished(alert_id)
    assert [r.status for r in rows] == ["delivered"] * SENDS
    times = channel.request_times()
    assert len(times) == SENDS
    assert _busiest_second(times) <= RATE + BURST


async def test_receipt_confirms_delivery(make_rig: RigFactory) -> None:
    """Receipt channels stay `sent` (accepted, not reached) until the receipt; for others acceptance is delivery."""
    rig = await make_rig()
    rig.channel.delay_receipt(0)
    await rig.subscribe(0)
    alert_id = await rig.publish()
    await rig.settle()
    rows = await rig.deliveries(alert_id)
    coverage = await rig.coverage(alert_id)
    if not rig.channel.confirms_by_receipt:
        assert [r.status for r in rows] == ["delivered"]
        assert (coverage.accepted, coverage.reached) == (1, 1)
        return
    assert [r.status for r in rows] == ["sent"]
    assert (coverage.accepted, coverage.reached) == (1, 0)
    rows = await rig.until_finished(alert_id)
    assert [r.status for r in rows] == ["delivered"]
    assert (await rig.coverage(alert_id)).reached == 1


async def test_a_failure_receipt_fires_the_fallback(make_rig: RigFactory) -> None:
    """A failure receipt (or, without receipts, a refusal) queues the subscriber's next channel, which delivers."""
    rig = await make_rig()
    rig.channel.fail_by_receipt(0)
    await rig.subscribe(0, with_fallback=True)
    alert_id = await rig.publish(policy="fallback")

    async def fallback_delivered() -> bool:
        rows = await rig.deliveries(alert_id, rig.fallback.kind)
        return [r.status for r in rows] == ["delivered"]

    await rig.until(fallback_delivered)
    assert [r.status for r in await rig.deliveries(alert_id, rig.channel.kind)] == ["failed"]
    assert rig.fallback.messages_seen() == 1
    assert (await rig.coverage(alert_id)).reached == 1
