"""Coverage figures, checked exactly against a scenario computed by hand."""

from __future__ import annotations

import pytest

from notifier.coverage import alert_coverage
from notifier.fakes.smtp import RunningSmtp
from notifier.fakes.webhook_receiver import Reply, RunningReceiver
from notifier.models import AlertIn
from notifier.publish import publish_alert
from notifier.service import Service
from tests.conftest import SubscriberFactory, settle
from tests.reach_times import expected_quantile, reach_delays

pytestmark = pytest.mark.both_backends  # SQLite and PostgreSQL (tests/conftest.py)

REGIONS = ["140402", "140411", "140481"]


async def _scenario(service: Service, make_subscriber: SubscriberFactory, receiver: RunningReceiver,
                    smtp: RunningSmtp) -> str:
    """Six targeted subscribers with known fates, three who must not be targeted; returns the alert id."""
    await make_subscriber(contacts={"webhook": receiver.url_for("/a")}, region="140402", groups=["elderly"])
    smtp.script("b@example.org", [550], then=550)
    await make_subscriber(contacts={"email": "b@example.org"}, region="140402", groups=["elderly", "disabled"])
    receiver.script("/c", [Reply(status=410)])
    await make_subscriber(contacts={"webhook": receiver.url_for("/c")}, region="140411")
    await make_subscriber(contacts={"email": "d@example.org", "webhook": receiver.url_for("/d")},
                          region="140411", groups=["elderly"])
    smtp.script("e@example.org", [451])
    await make_subscriber(contacts={"email": "e@example.org"}, region="140402", groups=["child"])
    await make_subscriber(contacts={"wechat": "oAbCdEfGhIjKlMnOpQrStUvWxYz1"}, region="140481")
    # Not targeted: severity below their minimum, outside the regions, another topic.
    await make_subscriber(contacts={"webhook": receiver.url_for("/g")}, min_severity="extreme")
    await make_subscriber(contacts={"webhook": receiver.url_for("/h")}, region="140421")
    await make_subscriber(contacts={"webhook": receiver.url_for("/i")}, topic="transit.fare-change")
    alert, _ = await publish_alert(service.store, AlertIn(
        topic="env.heavy-pollution", headline="重污染天气橙色预警", severity="severe", level="orange",
        regions=REGIONS, policy="all"), None)
    await settle(service)
    return alert.id


async def test_totals_count_distinct_targeted_and_reached_subscribers(
        service: Service, make_subscriber: SubscriberFactory, receiver: RunningReceiver, smtp: RunningSmtp) -> None:
    """Of six targeted subscribers three are reached: a 50 % coverage rate."""
    coverage = await alert_coverage(service.store, await _scenario(service, make_subscriber, receiver, smtp))
    assert (coverage.targeted, coverage.reached, coverage.accepted) == (6, 3, 3)
    assert coverage.coverage_rate == 0.5
    assert coverage.accepted_rate == 0.5


async def test_channel_figures_count_deliveries(
        service: Service, make_subscriber: SubscriberFactory, receiver: RunningReceiver, smtp: RunningSmtp) -> None:
    """Per channel: attempts, acceptances, deliveries and final failures, and reach rate = delivered/attempted."""
    coverage = await alert_coverage(service.store, await _scenario(service, make_subscriber, receiver, smtp))
    webhook, email, wechat = (coverage.by_channel[k] for k in ("webhook", "email", "wechat"))
    assert (webhook.attempted, webhook.sent, webhook.delivered, webhook.failed, webhook.pending) == (3, 2, 2, 1, 0)
    assert (email.attempted, email.sent, email.delivered, email.failed, email.pending) == (3, 2, 2, 1, 0)
    assert (wechat.attempted, wechat.sent, wechat.delivered, wechat.failed, wechat.pending) == (0, 0, 0, 1, 0)
    assert webhook.reach_rate == email.reach_rate == 2 / 3
    assert wechat.reach_rate is None


async def test_region_and_group_figures(
        service: Service, make_subscriber: SubscriberFactory, receiver: RunningReceiver, smtp: RunningSmtp) -> None:
    """Each region and group shows its own targeted and reached; a subscriber in two groups counts in both."""
    coverage = await alert_coverage(service.store, await _scenario(service, make_subscriber, receiver, smtp))
    regions = {code: (c.targeted, c.reached) for code, c in coverage.by_region.items()}
    assert regions == {"140402": (3, 2), "140411": (2, 1), "140481": (1, 0)}
    groups = {code: (c.targeted, c.reached) for code, c in coverage.by_group.items()}
    assert groups == {"elderly": (3, 2), "disabled": (1, 0), "child": (1, 1)}
    assert coverage.by_region["140402"].coverage_rate == 2 / 3


async def test_cells_cross_region_and_group(
        service: Service, make_subscriber: SubscriberFactory, receiver: RunningReceiver, smtp: RunningSmtp) -> None:
    """The region × group cells, with group null for subscribers in no group."""
    coverage = await alert_coverage(service.store, await _scenario(service, make_subscriber, receiver, smtp))
    cells = {(c.region, c.group): (c.targeted, c.reached) for c in coverage.cells}
    assert cells == {("140402", "child"): (1, 1), ("140402", "disabled"): (1, 0), ("140402", "elderly"): (2, 1),
                     ("140411", None): (1, 0), ("140411", "elderly"): (1, 1), ("140481", None): (1, 0)}


async def test_unreached_are_explained(
        service: Service, make_subscriber: SubscriberFactory, receiver: RunningReceiver, smtp: RunningSmtp) -> None:
    """The three targeted but unreached subscribers are listed by cause."""
    coverage = await alert_coverage(service.store, await _scenario(service, make_subscriber, receiver, smtp))
    assert coverage.unreachable == {"all_failed": 3}


async def test_time_to_reach_waits_for_the_share(
        service: Service, make_subscriber: SubscriberFactory, receiver: RunningReceiver, smtp: RunningSmtp) -> None:
    """p50 is known once half are reached — exactly the release-to-delivery time of the median target, as the
    deliveries show it — and p90 and p99 stay null while fewer than 90 % are."""
    alert_id = await _scenario(service, make_subscriber, receiver, smtp)
    coverage = await alert_coverage(service.store, alert_id)
    expected = await expected_quantile(service.store, [alert_id], 0.5, coverage.targeted)
    delays = await reach_delays(service.store, [alert_id])
    assert delays[1] < delays[2]  # E's retried email is the 3rd reach: a quantile one place off would show
    assert expected is not None and coverage.time_to_reach.p50 == pytest.approx(expected, abs=1e-6)
    assert coverage.time_to_reach.p90 is None and coverage.time_to_reach.p99 is None


async def test_viewer_cells_under_k_are_suppressed(
        service: Service, make_subscriber: SubscriberFactory, receiver: RunningReceiver, smtp: RunningSmtp) -> None:
    """With k = 5 every cell of this small scenario shows as suppressed, with no figures."""
    alert_id = await _scenario(service, make_subscriber, receiver, smtp)
    coverage = await alert_coverage(service.store, alert_id, suppress_below=5)
    assert all(c.suppressed and c.targeted is None and c.reached is None for c in coverage.cells)
    assert coverage.by_region["140402"].suppressed is True
    assert coverage.targeted == 6  # the alert's own totals are not a small cell


async def test_no_targets_gives_null_rates(service: Service) -> None:
    """An alert that targets nobody has null rates, not a division error."""
    alert, _ = await publish_alert(service.store, AlertIn(topic="env.air-forecast", headline="空气质量预报"), None)
    coverage = await alert_coverage(service.store, alert.id)
    assert (coverage.targeted, coverage.coverage_rate, coverage.accepted_rate) == (0, None, None)
