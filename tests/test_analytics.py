"""Coverage over a period per topic and department, and one alert by region × group × channel, checked exactly
against a scenario computed by hand."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

import pytest
from pydantic import ValidationError

from notifier.analytics import PeriodQuery, alert_breakdown, period_coverage
from notifier.fakes.webhook_receiver import Reply, RunningReceiver
from notifier.models import AlertIn, MsgType, Policy, Severity
from notifier.publish import publish_alert
from notifier.service import Service
from tests.conftest import SubscriberFactory, settle
from tests.reach_times import expected_quantile

pytestmark = pytest.mark.both_backends  # SQLite and PostgreSQL (tests/conftest.py)

CHENGQU, JIAOQU = "140402", "140411"
DAY = 86400.0
YESTERDAY = datetime.now(UTC) - timedelta(days=1)


async def _alert(service: Service, topic: str = "env.heavy-pollution", now: float | None = None) -> str:
    alert, _ = await publish_alert(service.store, AlertIn(
        topic=topic, headline="预警", severity=Severity.SEVERE, policy=Policy.ALL), None, now=now)
    await settle(service)
    return alert.id


async def _scenario(service: Service, make_subscriber: SubscriberFactory, receiver: RunningReceiver) -> list[str]:
    """A (城区, elderly, webhook) is reached; B (城区, elderly) has a webhook that answers 410, so it fails once
    and has no usable contact afterwards; C (郊区, child) is reached on both email and webhook; T follows transit.

    Alerts: 1 and 2 to env.heavy-pollution (A, B, C each), 3 to transit.fare-change (T), and 4 to
    env.heavy-pollution published forty days ago (A, B, C). Returns the four ids."""
    await make_subscriber(contacts={"webhook": receiver.url_for("/a")}, region=CHENGQU, groups=["elderly"])
    receiver.script("/b", [Reply(status=410)])
    await make_subscriber(contacts={"webhook": receiver.url_for("/b")}, region=CHENGQU, groups=["elderly"])
    await make_subscriber(contacts={"email": "c@example.org", "webhook": receiver.url_for("/c")}, region=JIAOQU,
                          groups=["child"])
    await make_subscriber(contacts={"webhook": receiver.url_for("/t")}, topic="transit.fare-change")
    first = await _alert(service)
    second = await _alert(service)
    third = await _alert(service, "transit.fare-change")
    old = await _alert(service, now=time.time() - 40 * DAY)
    return [first, second, third, old]


async def test_period_totals_sum_the_targets_of_its_alerts(
        service: Service, make_subscriber: SubscriberFactory, receiver: RunningReceiver) -> None:
    """Since yesterday: 3 alerts, 3 + 3 + 1 = 7 targets, of whom 2 + 2 + 1 = 5 were reached and accepted."""
    await _scenario(service, make_subscriber, receiver)
    total = (await period_coverage(service.store, PeriodQuery(since=YESTERDAY))).total
    assert (total.alerts, total.targeted, total.reached, total.accepted) == (3, 7, 5, 5)
    assert total.coverage_rate == 5 / 7


async def test_period_channel_figures_are_sums(
        service: Service, make_subscriber: SubscriberFactory, receiver: RunningReceiver) -> None:
    """Webhook: 3 + 2 + 1 attempts, 2 + 2 + 1 delivered, B's one failure; email: C twice."""
    await _scenario(service, make_subscriber, receiver)
    channels = (await period_coverage(service.store, PeriodQuery(since=YESTERDAY))).total.by_channel
    webhook, email = channels["webhook"], channels["email"]
    assert (webhook.attempted, webhook.delivered, webhook.failed) == (6, 5, 1)
    assert webhook.reach_rate == 5 / 6
    assert (email.attempted, email.delivered, email.failed) == (2, 2, 0)


async def test_period_unreachable_lists_every_cause(
        service: Service, make_subscriber: SubscriberFactory, receiver: RunningReceiver) -> None:
    """B failed once (all_failed) and then had no usable contact (no_contact); the other causes read 0."""
    await _scenario(service, make_subscriber, receiver)
    total = (await period_coverage(service.store, PeriodQuery(since=YESTERDAY))).total
    assert total.unreachable == {"no_contact": 1, "all_failed": 1, "pending": 0, "expired": 0, "cancelled": 0}


async def test_period_is_split_by_topic_and_department(
        service: Service, make_subscriber: SubscriberFactory, receiver: RunningReceiver) -> None:
    """The environment bureau's two alerts and the transport bureau's one each have their own figures."""
    await _scenario(service, make_subscriber, receiver)
    period = await period_coverage(service.store, PeriodQuery(since=YESTERDAY))
    topics = {k: (a.alerts, a.targeted, a.reached) for k, a in period.by_topic.items()}
    assert topics == {"env.heavy-pollution": (2, 6, 4), "transit.fare-change": (1, 1, 1)}
    departments = {k: (a.alerts, a.targeted, a.reached) for k, a in period.by_department.items()}
    assert departments == {"市环保局": (2, 6, 4), "市交通局": (1, 1, 1)}


async def test_an_alert_outside_the_period_is_not_counted(
        service: Service, make_subscriber: SubscriberFactory, receiver: RunningReceiver) -> None:
    """The alert of forty days ago counts only in a period that holds it: then it is alone, 2 of 3 reached."""
    await _scenario(service, make_subscriber, receiver)
    recent = (await period_coverage(service.store, PeriodQuery(since=YESTERDAY))).total
    assert recent.alerts == 3
    old = (await period_coverage(service.store, PeriodQuery(
        since=datetime.now(UTC) - timedelta(days=41), until=YESTERDAY))).total
    assert (old.alerts, old.targeted, old.reached) == (1, 3, 2)
    assert old.unreachable["no_contact"] == 1
    assert (await period_coverage(service.store, PeriodQuery())).total.alerts == 4


async def test_topic_pattern_and_department_filter(
        service: Service, make_subscriber: SubscriberFactory, receiver: RunningReceiver) -> None:
    """`env.*` selects the environment alerts; department 市交通局 the transit one."""
    await _scenario(service, make_subscriber, receiver)
    env = await period_coverage(service.store, PeriodQuery(topic="env.*", since=YESTERDAY))
    assert (env.total.alerts, env.total.targeted) == (2, 6)
    assert list(env.by_topic) == ["env.heavy-pollution"]
    transit = await period_coverage(service.store, PeriodQuery(department="市交通局"))
    assert (transit.total.alerts, transit.total.targeted) == (1, 1)


async def test_follow_ups_are_not_counted_again(
        service: Service, make_subscriber: SubscriberFactory, receiver: RunningReceiver) -> None:
    """An update goes to the alert's targets again but is not a new disclosure in the aggregate."""
    ids = await _scenario(service, make_subscriber, receiver)
    await publish_alert(service.store, AlertIn(topic="env.heavy-pollution", headline="预警更新",
                                               msg_type=MsgType.UPDATE, references=ids[0]), None)
    assert (await period_coverage(service.store, PeriodQuery(since=YESTERDAY))).total.alerts == 3


async def test_period_time_to_reach_counts_all_targets(
        service: Service, make_subscriber: SubscriberFactory, receiver: RunningReceiver) -> None:
    """5 of 7 targets reached: p50 is the 4th reach of the three alerts together (as their deliveries show it),
    p90 (the 7th) is not known."""
    first, second, third, _ = await _scenario(service, make_subscriber, receiver)
    times = (await period_coverage(service.store, PeriodQuery(since=YESTERDAY))).total.time_to_reach
    expected = await expected_quantile(service.store, [first, second, third], 0.5, 7)
    assert expected is not None and times.p50 == pytest.approx(expected, abs=1e-6)
    assert (times.p90, times.p99) == (None, None)


async def test_viewer_sums_leave_small_alerts_out(
        service: Service, make_subscriber: SubscriberFactory, receiver: RunningReceiver) -> None:
    """With k = 3 the transit alert (1 target) is left out of a viewer's sums: its topic and department show
    suppressed, and the total is the environment alerts' 6 — so total minus topics gives nothing away."""
    await _scenario(service, make_subscriber, receiver)
    period = await period_coverage(service.store, PeriodQuery(since=YESTERDAY), suppress_below=3)
    transit = period.by_topic["transit.fare-change"]
    assert transit.suppressed and transit.targeted is None and transit.by_channel == {}
    assert (transit.alerts, transit.suppressed_alerts) == (0, 1)
    assert period.by_department["市交通局"].suppressed
    assert period.by_topic["env.heavy-pollution"].targeted == 6
    assert (period.total.targeted, period.total.alerts, period.total.suppressed_alerts) == (6, 2, 1)


def test_until_must_be_after_since() -> None:
    """A period that ends where it starts is refused."""
    with pytest.raises(ValidationError):
        PeriodQuery(since=YESTERDAY, until=YESTERDAY)


def test_query_times_need_an_offset_and_a_plus_may_arrive_as_a_space() -> None:
    """`2026-01-01T00:00:00 08:00` (an unencoded +) is read as +08:00; a time without offset is refused."""
    query = PeriodQuery.model_validate({"since": "2026-01-01T00:00:00 08:00"})
    assert query.since == datetime(2025, 12, 31, 16, tzinfo=UTC)
    with pytest.raises(ValidationError):
        PeriodQuery.model_validate({"since": "2026-01-01T00:00:00"})


async def test_nothing_published_gives_zero_totals(service: Service) -> None:
    """A period without alerts has zero figures and null rates."""
    period = await period_coverage(service.store, PeriodQuery())
    assert (period.total.alerts, period.total.targeted, period.total.coverage_rate) == (0, 0, None)
    assert period.by_topic == {} and period.by_department == {}


# ---------------------------------------------------------------- one alert's breakdown


async def test_breakdown_counts_each_region_group_and_channel(
        service: Service, make_subscriber: SubscriberFactory, receiver: RunningReceiver) -> None:
    """Alert 1: 城区 elderly on webhook 2 targeted, 1 delivered, 1 failed; 郊区 children on email and webhook."""
    ids = await _scenario(service, make_subscriber, receiver)
    rows = {(r.region, r.group, r.channel): r for r in (await alert_breakdown(service.store, ids[0])).rows}
    assert set(rows) == {(CHENGQU, "elderly", "webhook"), (JIAOQU, "child", "email"), (JIAOQU, "child", "webhook")}
    elderly = rows[(CHENGQU, "elderly", "webhook")]
    assert (elderly.targeted, elderly.attempted, elderly.sent, elderly.delivered, elderly.failed, elderly.reached) \
        == (2, 2, 1, 1, 1, 1)
    assert rows[(JIAOQU, "child", "email")].delivered == rows[(JIAOQU, "child", "webhook")].delivered == 1


async def test_breakdown_reached_adds_up_to_the_cell(
        service: Service, make_subscriber: SubscriberFactory, receiver: RunningReceiver) -> None:
    """C was delivered on two channels but is one reached subscriber: the cell's rows add up to 1."""
    ids = await _scenario(service, make_subscriber, receiver)
    rows = (await alert_breakdown(service.store, ids[0])).rows
    assert sum(r.reached or 0 for r in rows if r.group == "child") == 1


async def test_breakdown_shows_subscribers_without_a_usable_contact(
        service: Service, make_subscriber: SubscriberFactory, receiver: RunningReceiver) -> None:
    """In alert 2, B has no usable contact: a row with channel null counts them."""
    ids = await _scenario(service, make_subscriber, receiver)
    rows = {(r.region, r.group, r.channel): r for r in (await alert_breakdown(service.store, ids[1])).rows}
    assert rows[(CHENGQU, "elderly", None)].targeted == 1
    assert rows[(CHENGQU, "elderly", "webhook")].targeted == 1


async def test_breakdown_with_a_small_row_is_withheld_from_viewers(
        service: Service, make_subscriber: SubscriberFactory, receiver: RunningReceiver) -> None:
    """With k = 2 a row of one subscriber would have to be hidden: a viewer gets no rows and suppressed: true."""
    ids = await _scenario(service, make_subscriber, receiver)
    breakdown = await alert_breakdown(service.store, ids[0], suppress_below=2)
    assert (breakdown.rows, breakdown.suppressed) == ([], True)


async def test_breakdown_with_nothing_to_hide_is_shown_to_viewers(
        service: Service, make_subscriber: SubscriberFactory, receiver: RunningReceiver) -> None:
    """With k = 1 nothing is small: a viewer sees every row, as an admin does."""
    ids = await _scenario(service, make_subscriber, receiver)
    viewer = await alert_breakdown(service.store, ids[0], suppress_below=1)
    assert viewer == await alert_breakdown(service.store, ids[0]) and viewer.suppressed is None
