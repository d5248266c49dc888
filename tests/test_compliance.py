"""Catalogue deadlines with a moved clock: a monthly disclosure across a month boundary, on time, late and
overdue, and the overdue notice sent once to its department over email and webhook, whichever worker looks."""

from __future__ import annotations

import base64
import json
from collections.abc import AsyncIterator
from datetime import datetime
from typing import Any

import pytest

from notifier.compliance import RETRY_SECONDS, OverdueNotices, month_compliance
from notifier.fakes.smtp import RunningSmtp
from notifier.fakes.webhook_receiver import RunningReceiver
from notifier.localtime import LOCAL_TZ
from notifier.models import AlertIn
from notifier.publish import publish_alert
from notifier.service import Service
from notifier.store import Store
from tests.conftest import SettingsFactory

pytestmark = pytest.mark.both_backends

TOPIC = "env.ranking-test"
DEPARTMENT = "市环保局"
MAILBOX = "gongkai@hbj.example.org"
SECRET = "whsec_" + base64.b64encode(b"0123456789abcdef0123456789abcdef").decode()


def at(day: str, clock: str = "12:00:00") -> float:
    """A moment in Beijing time, e.g. at("2026-10-20", "23:59:59")."""
    return datetime.fromisoformat(f"{day}T{clock}").replace(tzinfo=LOCAL_TZ).timestamp()


async def scheduled_topic(store: Store, schedule: dict[str, Any]) -> None:
    await store.create_topic({"key": TOPIC, "name": "空气质量排名（测试）", "name_en": "Air quality ranking (test)",
                              "domain": "environment", "department": DEPARTMENT, "channels": ["email"],
                              "schedule": schedule})


async def publish_at(store: Store, moment: float, **fields: Any) -> str:
    row, _ = await publish_alert(store, AlertIn.model_validate({"topic": TOPIC, "headline": "排名", **fields}),
                                 None, now=moment)
    return row.id


async def statuses(store: Store, period: str, now: float) -> dict[str, tuple[str, str | None]]:
    """{period: (status, published_at)} of the test topic in that month."""
    return {item.period: (item.status.value, item.published_at.isoformat() if item.published_at else None)
            for item in await month_compliance(store, period, now) if item.topic == TOPIC}


@pytest.fixture
async def service(make_settings: SettingsFactory, smtp: RunningSmtp,
                  receiver: RunningReceiver) -> AsyncIterator[Service]:
    """A service whose 市环保局 hears of overdue disclosures by email and webhook; a monthly topic due by the 20th
    from October 2026."""
    settings = make_settings(
        channels={"email": {"host": smtp.host, "port": smtp.port, "tls": "none",
                            "sender": "长治市政务公开 <notify@changzhi.gov.cn>"}},
        departments={DEPARTMENT: {"email": MAILBOX, "webhook": receiver.url_for("/bureau"),
                                  "webhook_secret": SECRET}})
    async with Service(settings) as running:
        await scheduled_topic(running.store, {"every": "month", "by_day": 20, "since": "2026-10"})
        yield running


# ---------------------------------------------------------------- statuses


async def test_a_deadline_ahead_is_not_due_and_passed_it_is_overdue(service: Service) -> None:
    """Before the end of the 20th nothing is owed yet; from midnight on, October's ranking is overdue."""
    assert await statuses(service.store, "2026-10", at("2026-10-20", "23:59:59")) == {"2026-10": ("not_due", None)}
    assert await statuses(service.store, "2026-10", at("2026-10-21", "00:00:00")) == {"2026-10": ("overdue", None)}


async def test_published_by_the_deadline_is_on_time_and_after_it_late(service: Service) -> None:
    """Published on the 20th at 23:59: on time; a month later, published on the 25th: late."""
    await publish_at(service.store, at("2026-10-20", "23:59:00"))
    await publish_at(service.store, at("2026-11-25"))
    assert await statuses(service.store, "2026-10", at("2026-12-01")) == {
        "2026-10": ("on_time", "2026-10-20T23:59:00+08:00")}
    assert await statuses(service.store, "2026-11", at("2026-12-01")) == {
        "2026-11": ("late", "2026-11-25T12:00:00+08:00")}


async def test_a_publication_next_month_does_not_rescue_a_missed_one(service: Service) -> None:
    """October missed; published on 1 November: October stays overdue, November is on time."""
    await publish_at(service.store, at("2026-11-01", "08:00:00"))
    now = at("2026-11-02")
    assert await statuses(service.store, "2026-10", now) == {"2026-10": ("overdue", None)}
    assert await statuses(service.store, "2026-11", now) == {"2026-11": ("on_time", "2026-11-01T08:00:00+08:00")}


async def test_only_public_disclosures_that_went_out_count(service: Service) -> None:
    """A non-public alert, a cancelled one and one scheduled past the deadline leave October overdue."""
    await publish_at(service.store, at("2026-10-10"), public=False)
    cancelled = await publish_at(service.store, at("2026-10-11"))
    await publish_at(service.store, at("2026-10-12"), msg_type="cancel", references=cancelled, headline="撤回")
    await publish_at(service.store, at("2026-10-13"), scheduled_at="2026-11-02T09:00:00+08:00")
    assert await statuses(service.store, "2026-10", at("2026-10-22")) == {"2026-10": ("overdue", None)}


async def test_nothing_is_owed_before_the_schedule_was_set(service: Service) -> None:
    """A month before `since` (or before the schedule was set) lists nothing."""
    assert await statuses(service.store, "2026-09", at("2026-12-01")) == {}


# ---------------------------------------------------------------- notices


def notices(service: Service) -> OverdueNotices:
    return OverdueNotices(service.store, service.settings.departments, service.channels, service.catalogue)


async def test_an_overdue_disclosure_is_sent_once_to_the_department(
        service: Service, smtp: RunningSmtp, receiver: RunningReceiver) -> None:
    """The day after the deadline the bureau gets one email and one signed webhook; later looks send nothing."""
    assert await notices(service)(at("2026-10-20", "23:00:00")) == 0
    assert await notices(service)(at("2026-10-21", "00:01:00")) == 1
    assert await notices(service)(at("2026-10-21", "00:02:00")) == 0
    assert await notices(service)(at("2026-10-25")) == 0  # another worker's look: still nothing
    mails = smtp.messages_to(MAILBOX)
    assert len(mails) == 1
    assert mails[0].subject == ("信息公开逾期：空气质量排名（测试）（2026-10） / "
                                "Disclosure overdue: Air quality ranking (test) (2026-10)")
    hooks = receiver.requests_to("/bureau")
    assert len(hooks) == 1 and hooks[0].signature is not None
    body = json.loads(hooks[0].body)
    assert (body["notice"], body["topic"], body["period"], body["status"], body["due_at"]) == (
        "compliance_overdue", TOPIC, "2026-10", "overdue", "2026-10-20T23:59:59+08:00")


async def test_across_the_month_boundary_last_months_deadline_is_still_told(
        service: Service, smtp: RunningSmtp) -> None:
    """A worker first looking on 2 November tells of October's missed ranking; November's comes after the 20th."""
    assert await notices(service)(at("2026-11-02")) == 1
    assert await notices(service)(at("2026-11-21")) == 1
    subjects = [m.subject or "" for m in smtp.messages_to(MAILBOX)]
    assert [s.split(" / ")[1] for s in subjects] == ["Disclosure overdue: Air quality ranking (test) (2026-10)",
                                                     "Disclosure overdue: Air quality ranking (test) (2026-11)"]


async def test_a_notice_that_could_not_be_sent_is_tried_again(
        service: Service, receiver: RunningReceiver) -> None:
    """The bureau's endpoint answers 503: the notice is tried again after a while, and then sent once."""
    receiver.script("/bureau", [503])
    now = at("2026-10-21")
    assert await notices(service)(now) == 0
    assert await notices(service)(now + 1) == 0  # not before the retry time
    assert await notices(service)(now + RETRY_SECONDS + 1) == 1
    assert [r.path for r in receiver.requests_to("/bureau")] == ["/bureau", "/bureau"]
    assert await service.store.compliance_notices(TOPIC) == [("2026-10", now + RETRY_SECONDS + 1, 2, None)]


async def test_the_workers_sweep_sends_the_notice(service: Service, smtp: RunningSmtp) -> None:
    """The dispatcher's own loop, its clock moved past the deadline, tells the department."""
    service.dispatcher.clock = lambda: at("2026-10-22")
    await service.dispatcher.run_once()
    assert len(smtp.messages_to(MAILBOX)) == 1


async def test_start_up_warns_of_departments_that_cannot_be_told(make_settings: SettingsFactory,
                                                                 caplog: pytest.LogCaptureFixture) -> None:
    """A department no topic names, and email contacts without [channels.email], are said at start-up."""
    settings = make_settings(departments={"市环保厅": {"webhook": "https://hbj.example.org/hook",
                                                      "webhook_secret": SECRET},
                                          DEPARTMENT: {"email": [MAILBOX]}})
    async with Service(settings):
        pass
    said = [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]
    assert any('[departments."市环保厅"]: no topic names this department' in line and "市环保局" in line
               for line in said)
    assert any('[departments."市环保局"] email: [channels.email] is not configured' in line for line in said)
