"""For the tests that look at the plans of what the store actually runs: a transaction's statements, run as ever and
written down with their parameters (`Recording`), and the flows they are recorded through — three people warned
(`three_people`, `warned`), their sends recorded as accepted or failing, a push of their reports."""

from __future__ import annotations

import time
import uuid
from collections.abc import AsyncIterator, Iterable
from contextlib import asynccontextmanager
from typing import Any

from channels.base import Receipt
from notifier.config import Settings
from notifier.database import city_catalogue, seed_catalogue
from notifier.models import AlertIn
from notifier.publish import publish_alert
from notifier.states import DeliveryStatus
from notifier.store import Store, open_store, queue
from notifier.store.db import Db, Row
from notifier.store.records import ClaimedDelivery, DeliveryUpdate
from tests.crowd import sms_people


async def sent_by_sms(store: Store, severity: str, provider_message_id: str) -> tuple[str, str]:
    """A warning of `severity` to the one person of the store, by SMS, its text sent under `provider_message_id`:
    (the alert's id, the delivery's)."""
    alert, _ = await publish_alert(store, AlertIn(topic="env.heavy-pollution", headline="预警", severity=severity),
                                   None)
    now = time.time()
    [claimed] = await store.claim("worker-1", now, now + 60, 10)
    await store.record("worker-1", [DeliveryUpdate(claimed.id, alert.id, DeliveryStatus.SENT, now,
                                                   provider_message_id=provider_message_id)], now)
    return alert.id, claimed.id


class Recording:
    """A `Db` that writes down each statement it runs, with its parameters."""

    def __init__(self, db: Db) -> None:
        self.db, self.dialect = db, db.dialect
        self.runs = list[tuple[str, tuple[Any, ...]]]()

    @property
    def statements(self) -> list[str]:
        """Each statement once, in the order first run."""
        return list(dict.fromkeys(sql for sql, _ in self.runs))

    async def noted(self, sql: str, args: tuple[Any, ...]) -> None:
        """Called before each statement runs."""
        self.runs.append((sql, args))

    async def execute(self, sql: str, *args: Any) -> int:
        await self.noted(sql, args)
        return await self.db.execute(sql, *args)

    async def executemany(self, sql: str, rows: Iterable[Any]) -> None:
        await self.noted(sql, ())
        await self.db.executemany(sql, rows)

    async def fetch(self, sql: str, *args: Any) -> list[Row]:
        await self.noted(sql, args)
        return await self.db.fetch(sql, *args)

    async def fetchrow(self, sql: str, *args: Any) -> Row | None:
        await self.noted(sql, args)
        return await self.db.fetchrow(sql, *args)

    async def fetchval(self, sql: str, *args: Any) -> Any:
        await self.noted(sql, args)
        return await self.db.fetchval(sql, *args)


@asynccontextmanager
async def three_people(settings: Settings) -> AsyncIterator[Store]:
    """A store opened on `settings`: the catalogue and three people, each with SMS, then email
    (`sms_people(3, email=True)`)."""
    store = await open_store(settings)
    try:
        await seed_catalogue(store, city_catalogue(settings))
        await store.bulk_create_subscribers(sms_people(3, email=True), [{}] * 3)
        yield store
    finally:
        await store.close()


async def warned(store: Store, policy: str) -> None:
    """A warning to the three people of `sms_people(3, email=True)` (`policy`)."""
    await publish_alert(store, AlertIn(topic="env.heavy-pollution", headline="预警", severity="severe",
                                       policy=policy, fallback_after=60), None)


async def _claimed(db: Db, policy: str) -> tuple[str, float, list[ClaimedDelivery]]:
    """`warned`'s deliveries due now claimed and read: the owner, the time, the deliveries."""
    owner, now = uuid.uuid4().hex, time.time()
    await queue.claim(db, owner, now, now + 60, 500)
    claimed = await queue.leased(db, owner, now + 60)
    assert len(claimed) == (3 if policy == "fallback" else 6)
    return owner, now, claimed


async def claimed_and_recorded(db: Db, status: DeliveryStatus, policy: str, *, ids: str = "m") -> None:
    """`warned`'s deliveries due now claimed, read and recorded as `status`, each under an id of its own (`ids`
    and a number: m0, m1, …)."""
    owner, now, claimed = await _claimed(db, policy)
    done = [DeliveryUpdate(d.id, d.alert_id, status, now, provider_message_id=f"{ids}{n}")
            for n, d in enumerate(claimed)]
    recorded = await queue.record(db, owner, done, now, lambda: b"key", people_once=policy == "fallback")
    assert len(recorded.written) == len(done)


async def claimed_and_failed(db: Db) -> None:
    """A `fallback` warning's three texts claimed and recorded as they fail: one to be tried again, one failed for
    good (the person's email goes out instead), one refused for good with its contact disabled."""
    owner, now, claimed = await _claimed(db, "fallback")
    retry, final, refused = claimed
    assert len((await queue.record(db, owner, [
        DeliveryUpdate(retry.id, retry.alert_id, DeliveryStatus.QUEUED, now, next_attempt_at=now + 30, error="busy"),
        DeliveryUpdate(final.id, final.alert_id, DeliveryStatus.FAILED, now, error="refused", fall_back=True),
        DeliveryUpdate(refused.id, refused.alert_id, DeliveryStatus.FAILED, now, error="gone", fall_back=True,
                       disable_contact=True)], now, lambda: b"key")).written) == 3


async def a_push(db: Db) -> list[Receipt]:
    """After `claimed_and_recorded` sent three SMS (m0, m1, m2): a push of their reports — by their own ids (m0
    delivered, m1 failed), and by a request's id and a number (m2, as Aliyun reports the numbers of a BizId)."""
    number = await db.fetchval("SELECT c.address FROM deliveries d JOIN contacts c ON c.subscriber_id = "
                               "d.subscriber_id AND c.channel = d.channel WHERE d.provider_message_id = 'm2'")
    return [Receipt("m0", True, "r0"), Receipt("m1", False, "r1", error="UNDELIV"),
            Receipt("m2", True, "r2", address=number)]
