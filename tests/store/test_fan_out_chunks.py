"""A publish to more people than one chunk freezes every target at once and creates the delivery rows of the first
chunk; the workers make the rest, a chunk a transaction (store/audience.py, `FAN_OUT_CHUNK`). Nothing is lost or
made twice, a crash resumes, a cancel meanwhile ends the rows made after it, the most urgent alert's rows are made
first, and coverage counts the targets still waiting for their rows as pending."""

from __future__ import annotations

import asyncio
import time
from collections import Counter

import pytest

from notifier.coverage import alert_coverage
from notifier.fakes.smtp import RunningSmtp
from notifier.models import AlertIn
from notifier.publish import cancel_alert, publish_alert
from notifier.service import Service
from notifier.store import Store, audience
from tests.conftest import settle
from tests.store.conftest import people

pytestmark = pytest.mark.both_backends  # SQLite and PostgreSQL (tests/conftest.py)

CHUNK = 100  # instead of thousands: the same rules over a few hundred people
ROUTINE = AlertIn(topic="env.heavy-pollution", headline="公交票价调整", severity="minor", urgency="future")
RED = AlertIn(topic="disaster.weather-warning", headline="暴雨红色预警", severity="extreme", urgency="immediate",
              level="red")


@pytest.fixture(autouse=True)
def small_chunks(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(audience, "FAN_OUT_CHUNK", CHUNK)


async def _rows(store: Store, alert_id: str) -> list[tuple[str, str]]:
    rows, _ = await store.list_deliveries(alert_id, 10_000, None)
    return [(r.subscriber_id, r.status) for r in rows]


async def _finish(store: Store) -> int:
    """Make every row the publishes left to the workers; how many chunks that took."""
    chunks = 0
    while await store.continue_fan_out(time.time()):
        chunks += 1
    return chunks


async def test_a_publish_to_more_than_a_chunk_counts_every_target_and_the_workers_make_the_other_rows(
        service: Service) -> None:
    """350 people: the publish answers with 350 targeted and the rows of the first 100; three more chunks make the
    rest, each person exactly one row, and then there is nothing left to make."""
    await service.store.bulk_create_subscribers(people(350), [{}] * 350)
    alert, _ = await publish_alert(service.store, ROUTINE, None)
    assert alert.targeted == 350
    assert len(await _rows(service.store, alert.id)) == CHUNK
    assert await service.store.fanning_out(alert.id)
    assert await _finish(service.store) == 3
    made = Counter(who for who, _ in await _rows(service.store, alert.id))
    assert len(made) == 350 and set(made.values()) == {1}
    assert not await service.store.fanning_out(alert.id)


async def test_a_small_publish_has_all_its_rows_when_it_answers(service: Service) -> None:
    """Fewer people than a chunk: every row is made in the publish, and no work is left for the workers."""
    await service.store.bulk_create_subscribers(people(CHUNK - 1), [{}] * (CHUNK - 1))
    alert, _ = await publish_alert(service.store, ROUTINE, None)
    assert len(await _rows(service.store, alert.id)) == CHUNK - 1
    assert not await service.store.fanning_out(alert.id)
    assert await _finish(service.store) == 0


async def test_targets_whose_rows_are_not_made_yet_count_as_pending_not_as_unreachable(service: Service) -> None:
    """Right after the publish, the 250 people whose rows are still to be made are not "no usable contact":
    coverage says all 350 are pending."""
    await service.store.bulk_create_subscribers(people(350), [{}] * 350)
    alert, _ = await publish_alert(service.store, ROUTINE, None)
    assert (await alert_coverage(service.store, alert.id)).unreachable == {"pending": 350}


async def test_rows_made_after_a_cancel_are_cancelled_at_once(service: Service) -> None:
    """The alert is cancelled after its first chunk: the rows made afterwards are cancelled too, none is queued,
    and coverage counts all 350 as cancelled — as if every row had been made at the publish."""
    await service.store.bulk_create_subscribers(people(350), [{}] * 350)
    alert, _ = await publish_alert(service.store, ROUTINE, None)
    await cancel_alert(service.store, alert.id, None)
    await _finish(service.store)
    assert Counter(status for _, status in await _rows(service.store, alert.id)) == {"cancelled": 350}
    coverage = await alert_coverage(service.store, alert.id)
    assert coverage.unreachable == {"cancelled": 350}
    assert coverage.by_channel["sms"].failed == 350


async def test_a_red_warnings_rows_are_made_before_a_routine_alerts(service: Service) -> None:
    """A routine alert and then a red warning, each to 350 people, both with rows still to make: the next chunk
    is the red warning's."""
    await service.store.bulk_create_subscribers(people(350), [{}] * 350)
    await service.store.bulk_create_subscribers(people(350, "disaster.weather-warning", start=350), [{}] * 350)
    routine, _ = await publish_alert(service.store, ROUTINE, None)
    red, _ = await publish_alert(service.store, RED, None)
    assert await service.store.continue_fan_out(time.time())
    assert (len(await _rows(service.store, red.id)), len(await _rows(service.store, routine.id))) == (200, 100)


async def test_two_workers_making_rows_at_once_make_each_once(service: Service) -> None:
    """Two workers continue the same fan-out at the same moment (PostgreSQL: the job row is locked by one, the
    other skips it): every person still has exactly one row."""
    await service.store.bulk_create_subscribers(people(350), [{}] * 350)
    alert, _ = await publish_alert(service.store, ROUTINE, None)
    while any(await asyncio.gather(*(service.store.continue_fan_out(time.time()) for _ in range(2)))):
        pass
    made = Counter(who for who, _ in await _rows(service.store, alert.id))
    assert len(made) == 350 and set(made.values()) == {1}


async def test_a_restart_resumes_the_rows_a_publish_left(service: Service, smtp: RunningSmtp) -> None:
    """The process stops right after a publish to 250 people by email; a new process on the same database makes
    the rest of the rows and sends to every one of them, once."""
    await service.store.bulk_create_subscribers(people(250, channel="email"), [{}] * 250)
    alert, _ = await publish_alert(service.store, ROUTINE, None)
    await service.close()
    async with Service(service.settings) as restarted:
        await settle(restarted)
        assert Counter(status for _, status in await _rows(restarted.store, alert.id)) == {"delivered": 250}
    assert Counter(m.envelope_to for m in smtp.messages) == {(f"p{n}@example.org",): 1 for n in range(250)}
