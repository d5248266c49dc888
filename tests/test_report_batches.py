"""Delivery reports that come one a request (a WeChat event, a Tencent callback) thousands a second are stored a
batch at a time: what arrives while a batch is stored goes in the next one, in the order it came, and each request
is answered once its batch is committed (and applied, `tests/test_report_applier.py`)."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping

import aiohttp
import pytest

from channels.base import Receipt
from notifier.coverage import alert_coverage
from notifier.fakes.wechat import event_xml, signed_query
from notifier.models import AlertIn
from notifier.publish import publish_alert
from notifier.report_applier import ReportApplier
from notifier.report_batches import ReportBatches
from notifier.store.receipts import Applied
from tests.conftest import settle
from tests.test_receipts import OPENID, TOKEN, Wired, wired  # noqa: F401 (the fixture)

pytestmark = pytest.mark.both_backends  # SQLite and PostgreSQL (tests/conftest.py)


class HeldStore:
    """A store whose pushes are stored only when the test lets them go, or failing when a report says so
    ("fail:…"); nothing waits to be applied."""

    def __init__(self) -> None:
        self.batches: list[list[str]] = []
        self.go = asyncio.Event()

    async def store_reports(self, channel: str, receipts: list[Receipt], now: float,
                            life_safety_since: float | None = None) -> bool:
        self.batches.append([r.key for r in receipts])
        await self.go.wait()
        if any(r.key.startswith("fail:") for r in receipts):
            raise RuntimeError("the database went away")
        return False

    async def apply_waiting(self, redial: Mapping[str, object], limit: int, *,
                            idle: bool = False) -> Applied:
        return Applied([], more=False, requeued={})


def _batches(store: HeldStore, **options: int) -> ReportBatches:
    return ReportBatches(store, ReportApplier(store), **options)  # type: ignore[arg-type]


async def _turns() -> None:
    """Let every task started so far run until it waits."""
    for _ in range(5):
        await asyncio.sleep(0)


def _report(key: str) -> list[Receipt]:
    return [Receipt(key.split(":")[1], True, key)]


async def test_reports_that_come_while_a_batch_is_stored_make_the_next_batch_in_their_order() -> None:
    store = HeldStore()
    batches = _batches(store)
    first = asyncio.create_task(batches.apply("wechat", _report("pending:1")))
    await _turns()
    later = [asyncio.create_task(batches.apply("wechat", _report(f"{o}:{n}")))
             for n, o in enumerate(["pending", "duplicate", "pending"], start=2)]
    await _turns()
    store.go.set()
    await asyncio.gather(first, *later)
    assert store.batches == [["pending:1"], ["pending:2", "duplicate:3", "pending:4"]]


async def test_a_batch_holds_at_most_its_limit_and_the_rest_goes_first_next() -> None:
    store = HeldStore()
    batches = _batches(store, batch_reports=2)
    tasks = [asyncio.create_task(batches.apply("sms", _report(f"pending:{n}"))) for n in range(5)]
    await _turns()
    store.go.set()
    await asyncio.gather(*tasks)
    assert store.batches == [["pending:0", "pending:1"], ["pending:2", "pending:3"], ["pending:4"]]


async def test_a_failed_batch_fails_each_of_its_requests_and_the_next_batch_goes_on() -> None:
    store = HeldStore()
    batches = _batches(store)
    first = asyncio.create_task(batches.apply("wechat", _report("fail:1")))
    await _turns()
    second = asyncio.create_task(batches.apply("wechat", _report("pending:2")))
    store.go.set()
    with pytest.raises(RuntimeError):
        await first
    await second  # stored


async def test_each_channel_has_its_own_batches() -> None:
    store = HeldStore()
    batches = _batches(store)
    tasks = [asyncio.create_task(batches.apply(channel, _report(f"pending:{channel}")))
             for channel in ("wechat", "sms", "voice")]
    await _turns()
    assert sorted(store.batches) == [["pending:sms"], ["pending:voice"], ["pending:wechat"]]
    store.go.set()
    await asyncio.gather(*tasks)


async def _sent(wired: Wired, people: int) -> tuple[str, list[str]]:  # noqa: F811 (the fixture's name)
    """`people` WeChat subscribers sent an alert, their events kept by the fake; the alert and the messages' ids."""
    from notifier.subscribers import create_subscriber
    from subscriptions.models import SubscriberIn

    for n in range(people):
        openid = f"{OPENID[:-4]}{n:04d}"
        wired.wechat.script(openid, "no_receipt")
        await create_subscriber(wired.service.store, SubscriberIn.model_validate({
            "contacts": {"wechat": openid}, "region": "140402",
            "subscriptions": [{"topic": "env.heavy-pollution", "channels": ["wechat"]}]}), allow_private_webhooks=True)
    alert, _ = await publish_alert(wired.service.store, AlertIn(topic="env.heavy-pollution", headline="预警",
                                                                severity="severe"), None)
    await settle(wired.service)
    rows, _ = await wired.service.store.list_deliveries(alert.id, people, None)
    return alert.id, sorted(row.provider_message_id or "" for row in rows)


async def test_many_events_at_once_are_each_applied_and_answered(wired: Wired) -> None:  # noqa: F811
    """Fifty TEMPLATESENDJOBFINISH events posted together, one of them twice: every request answered `success`,
    everyone reached."""
    alert_id, ids = await _sent(wired, 50)

    async def post(http: aiohttp.ClientSession, msgid: str) -> tuple[int, str]:
        xml = event_xml("gh_test", OPENID, "TEMPLATESENDJOBFINISH", msg_id=int(msgid), status="success")
        async with http.post(f"{wired.base}/v1/wechat/callback", params=signed_query(TOKEN, OPENID),
                             data=xml) as response:
            return response.status, await response.text()

    async with aiohttp.ClientSession() as http:
        answers = await asyncio.gather(*(post(http, msgid) for msgid in [*ids, ids[0]]))
    assert set(answers) == {(200, "success")}
    coverage = await alert_coverage(wired.service.store, alert_id)
    assert (coverage.reached, coverage.by_channel["wechat"].delivered) == (50, 50)
