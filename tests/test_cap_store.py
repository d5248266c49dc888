"""CAP in the store and the messages: English words for English subscribers, GB/T 35965.1 serials drawn in the
storing transaction, and alerts and schedules stored before migration 0008 brought up to it."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from datetime import datetime, timedelta

import pytest

from notifier.cap import parse_gbt_identifier
from notifier.database import seed_catalogue
from notifier.fakes.smtp import RunningSmtp
from notifier.fakes.webhook_receiver import RunningReceiver
from notifier.interchange import read_cap
from notifier.localtime import LOCAL_TZ
from notifier.models import AlertIn
from notifier.publish import cancel_alert, publish_alert
from notifier.service import Service
from tests.cap.samples import EN_INFO, document, zh_info
from tests.conftest import SettingsFactory, SubscriberFactory, settle

pytestmark = pytest.mark.both_backends

SENDER_CODE = "14040000100000"


def cap_doc(*, en: bool = True) -> bytes:
    expires = (datetime.now(LOCAL_TZ) + timedelta(days=2)).replace(microsecond=0).isoformat()
    info = zh_info(**{"2026-11-28T18:00:00+08:00": expires}) + (EN_INFO if en else "")
    return document(identifier="en-test-1" if en else "zh-only-1", infos=info)


async def publish_cap(service: Service, data: bytes) -> str:
    imported = await read_cap(service.store, data)
    row, _ = await publish_alert(service.store, imported.alert, None, cap=imported)
    return row.id


def headlines(receiver: RunningReceiver, path: str) -> list[str]:
    return [json.loads(r.body)["headline"] for r in receiver.requests_to(path)]


async def test_english_subscribers_read_the_english_block(service: Service, make_subscriber: SubscriberFactory,
                                                          receiver: RunningReceiver) -> None:
    """A CAP alert with an en block: English subscribers get its words, Chinese ones the zh-CN block's."""
    await make_subscriber(contacts={"webhook": receiver.url_for("/en")}, locale="en", groups=["elderly"])
    await make_subscriber(contacts={"webhook": receiver.url_for("/zh")}, groups=["elderly"])
    await publish_cap(service, cap_doc())
    await settle(service)
    assert headlines(receiver, "/en") == ["Orange heavy pollution warning for Changzhi"]
    assert headlines(receiver, "/zh") == ["长治市发布重污染天气橙色预警"]


async def test_without_an_english_block_english_subscribers_read_chinese(
        service: Service, make_subscriber: SubscriberFactory, receiver: RunningReceiver) -> None:
    """No en block: the English subscriber's message carries the zh-CN words."""
    await make_subscriber(contacts={"webhook": receiver.url_for("/en")}, locale="en", groups=["elderly"])
    await publish_cap(service, cap_doc(en=False))
    await settle(service)
    assert headlines(receiver, "/en") == ["长治市发布重污染天气橙色预警"]


async def test_a_cancel_notice_of_a_cap_alert_speaks_english_too(
        service: Service, make_subscriber: SubscriberFactory, receiver: RunningReceiver) -> None:
    """The notice that withdraws a CAP alert repeats its English words, under an identity of its own."""
    await make_subscriber(contacts={"webhook": receiver.url_for("/en")}, locale="en", groups=["elderly"])
    alert_id = await publish_cap(service, cap_doc())
    await settle(service)
    _, _, notice = await cancel_alert(service.store, alert_id, None)
    await settle(service)
    assert notice is not None and notice.headline_en == "Orange heavy pollution warning for Changzhi"
    assert notice.cap_origin is None and notice.cap_identifier == notice.id
    assert [json.loads(r.body)["type"] for r in receiver.requests_to("/en")] == ["alert.alert", "alert.cancel"]


@pytest.fixture
async def coded(make_settings: SettingsFactory, smtp: RunningSmtp) -> AsyncIterator[Service]:
    """A service whose alerts carry GB/T 35965.1 identifiers."""
    async with Service(make_settings(cap={"sender": "notify.changzhi.gov.cn", "sender_code": SENDER_CODE})) as svc:
        yield svc


async def test_serials_count_the_alerts_of_one_second(coded: Service) -> None:
    """Ten alerts entered in one second take serials 0-9; the eleventh is numbered in the next second."""
    moment = datetime(2026, 12, 3, 8, 0, 0, 250000, tzinfo=LOCAL_TZ).timestamp()
    identifiers = []
    for n in range(11):
        row, _ = await publish_alert(coded.store, AlertIn(topic="env.heavy-pollution", headline=f"预警{n}"), None,
                                     now=moment)
        identifiers.append(row.cap_identifier)
    assert identifiers[:10] == [f"{SENDER_CODE}_20261203080000_{n}" for n in range(10)]
    assert identifiers[10] == f"{SENDER_CODE}_20261203080001_0"


async def test_concurrent_publishers_never_share_an_identifier(coded: Service) -> None:
    """Alerts published at once in the same second each get an identifier of their own."""
    import asyncio

    moment = datetime(2026, 12, 3, 9, 0, 0, tzinfo=LOCAL_TZ).timestamp()
    rows = await asyncio.gather(*(publish_alert(coded.store, AlertIn(topic="env.heavy-pollution", headline="预警"),
                                                None, now=moment) for _ in range(6)))
    identifiers = [row.cap_identifier for row, _ in rows]
    assert len(set(identifiers)) == 6
    assert all((p := parse_gbt_identifier(i or "")) is not None and p.unit == SENDER_CODE for i in identifiers)


@pytest.mark.parametrize("coding", [False, True], ids=["known-by-its-id", "gbt-serial"])
async def test_a_published_alert_comes_back_with_the_cap_identity_it_was_stored_with(
        make_settings: SettingsFactory, coding: bool) -> None:
    """What the publish answers is what is stored, its CAP identity drawn in the same transaction included."""
    cap = {"sender": "notify.changzhi.gov.cn", **({"sender_code": SENDER_CODE} if coding else {})}
    async with Service(make_settings(cap=cap)) as service:
        row, _ = await publish_alert(service.store, AlertIn(topic="env.heavy-pollution", headline="预警"), None)
        assert row == await service.store.get_alert(row.id)
    assert row.cap_sender == "notify.changzhi.gov.cn" and row.cap_sent == row.created_at
    assert (row.cap_identifier == row.id) is not coding


async def test_alerts_stored_before_cap_get_an_identity_when_the_store_opens(coded: Service) -> None:
    """An alert without a CAP identity (stored before migration 0008) is named when the store is upgraded."""
    row, _ = await publish_alert(coded.store, AlertIn(topic="env.heavy-pollution", headline="旧预警"), None)
    async with coded.store.backend.transaction() as db:
        await db.execute("UPDATE alerts SET cap_sender = NULL, cap_identifier = NULL, cap_sent = NULL")
    await coded.store.upgrade()
    named = await coded.store.get_alert(row.id)
    assert named is not None and named.cap_sender == "notify.changzhi.gov.cn"
    assert named.cap_identifier == row.cap_identifier and named.cap_sent == row.created_at


async def test_schedules_stored_as_text_before_0008_become_data(service: Service) -> None:
    """A topic whose schedule was kept as JSON text is moved into the schedule columns when the catalogue loads."""
    async with service.store.backend.transaction() as db:
        await db.execute("UPDATE topics SET schedule = ?, schedule_every = NULL WHERE key = ?",
                         '{"by_day":20,"every":"month"}', "env.monthly-ranking")
    await seed_catalogue(service.store, service.catalogue)
    async with service.store.backend.transaction() as db:
        row = await db.fetchrow("SELECT schedule, schedule_every, schedule_by_day FROM topics WHERE key = ?",
                                "env.monthly-ranking")
    assert row is not None and (row["schedule"], row["schedule_every"], row["schedule_by_day"]) == (None, "month", 20)
    topic = await service.store.get_topic("env.monthly-ranking")
    assert topic is not None and topic["schedule"] == '{"by_day":20,"every":"month"}'
