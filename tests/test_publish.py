"""Publishing: targeting, validation against the catalogue, idempotency, updates to the original audience."""

from __future__ import annotations

import pytest

from notifier.errors import ConflictError, InvalidInput
from notifier.fakes.webhook_receiver import RunningReceiver
from notifier.models import AlertIn
from notifier.publish import check_alert, publish_alert
from notifier.service import Service
from tests.conftest import SubscriberFactory

pytestmark = pytest.mark.both_backends  # SQLite and PostgreSQL (tests/conftest.py)


def _alert(**fields: object) -> AlertIn:
    body: dict[str, object] = {"topic": "env.heavy-pollution", "headline": "重污染天气预警"}
    return AlertIn.model_validate({**body, **fields})


async def test_targets_subscribers_of_the_topic_in_the_regions_and_groups(
        service: Service, make_subscriber: SubscriberFactory, receiver: RunningReceiver) -> None:
    """Only subscribers of the topic, in a target region and in a target group are targeted."""
    hook = {"webhook": receiver.url_for("/t")}
    await make_subscriber(contacts=hook, region="140402", groups=["elderly"])
    await make_subscriber(contacts=hook, region="140402", groups=["elderly", "child"])
    await make_subscriber(contacts=hook, region="140402", groups=["child"])
    await make_subscriber(contacts=hook, region="140421", groups=["elderly"])
    await make_subscriber(contacts=hook, region="140402", groups=["elderly"], topic="transit.fare-change")
    alert, created = await publish_alert(service.store, _alert(regions=["140402"], groups=["elderly"]), None)
    assert created and alert.targeted == 2


async def test_no_regions_and_no_groups_means_everyone_subscribed(
        service: Service, make_subscriber: SubscriberFactory, receiver: RunningReceiver) -> None:
    """An alert naming no region and no group reaches every subscriber of its topic."""
    for region in ("140402", "140411", "140481"):
        await make_subscriber(contacts={"webhook": receiver.url_for("/all")}, region=region)
    alert, _ = await publish_alert(service.store, _alert(), None)
    assert alert.targeted == 3


async def test_minimum_severity_filters_subscribers(
        service: Service, make_subscriber: SubscriberFactory, receiver: RunningReceiver) -> None:
    """A subscriber who asked only for severe alerts is not targeted by a moderate one."""
    await make_subscriber(contacts={"webhook": receiver.url_for("/s")}, min_severity="severe")
    moderate, _ = await publish_alert(service.store, _alert(severity="moderate"), None)
    severe, _ = await publish_alert(service.store, _alert(severity="severe"), None)
    assert (moderate.targeted, severe.targeted) == (0, 1)


async def test_unknown_topic_region_and_group_are_refused_and_nothing_is_stored(service: Service) -> None:
    """Each unknown name is reported on its own field and no alert is created."""
    with pytest.raises(InvalidInput) as caught:
        await publish_alert(service.store, _alert(topic="env.nothing", regions=["999999"], groups=["aliens"]), None)
    assert {e.field for e in caught.value.errors} == {"topic", "regions", "groups"}
    assert (await service.store.list_alerts(10, None))[1] == 0


async def test_same_idempotency_key_returns_the_same_alert(service: Service) -> None:
    """Publishing twice with one key stores one alert."""
    first, created_first = await publish_alert(service.store, _alert(idempotency_key="k-1"), None)
    again, created_again = await publish_alert(service.store, _alert(idempotency_key="k-1"), None)
    assert (created_first, created_again) == (True, False)
    assert again.id == first.id
    assert (await service.store.list_alerts(10, None))[1] == 1


async def test_same_idempotency_key_with_another_body_is_a_conflict(service: Service) -> None:
    """Reusing a key for a different alert is refused."""
    await publish_alert(service.store, _alert(idempotency_key="k-2"), None)
    with pytest.raises(ConflictError):
        await publish_alert(service.store, _alert(idempotency_key="k-2", headline="另一条"), None)


async def test_a_request_repeated_after_its_alert_expired_is_answered_with_that_alert(service: Service) -> None:
    """The retry of a request that was stored is the same request, even when its alert has expired since."""
    first, _ = await publish_alert(service.store, _alert(idempotency_key="k-3", expires_at="2030-01-01T00:10:00Z"),
                                   None, now=1893456000.0)  # 2030-01-01T00:00:00Z
    again, created = await publish_alert(service.store, _alert(idempotency_key="k-3",
                                                               expires_at="2030-01-01T00:10:00Z"),
                                         None, now=1893456000.0 + 3600)
    assert (again.id, created) == (first.id, False)


async def test_a_repeat_of_a_request_the_catalogue_refuses_is_still_refused(service: Service) -> None:
    """Nothing was stored under its key, so the repeat is checked as the first was."""
    for _ in range(2):
        with pytest.raises(InvalidInput):
            await publish_alert(service.store, _alert(idempotency_key="k-4", regions=["999999"]), None)
    assert (await service.store.list_alerts(10, None))[1] == 0


async def test_update_goes_to_the_original_targets(
        service: Service, make_subscriber: SubscriberFactory, receiver: RunningReceiver) -> None:
    """An update reaches exactly those the original alert targeted, even after others subscribe."""
    await make_subscriber(contacts={"webhook": receiver.url_for("/u")}, region="140402")
    original, _ = await publish_alert(service.store, _alert(regions=["140402"]), None)
    await make_subscriber(contacts={"webhook": receiver.url_for("/u")}, region="140402")
    update, _ = await publish_alert(service.store, _alert(msg_type="update", references=original.id,
                                                          headline="预警更新"), None)
    assert (original.targeted, update.targeted) == (1, 1)


async def test_update_must_reference_an_alert_of_the_same_topic(service: Service) -> None:
    """An update pointing at an alert of another topic is refused."""
    other, _ = await publish_alert(service.store, _alert(topic="transit.fare-change", headline="票价调整"), None)
    with pytest.raises(InvalidInput) as caught:
        await publish_alert(service.store, _alert(msg_type="update", references=other.id), None)
    assert caught.value.errors[0].field == "references"


async def test_an_alert_already_expired_is_refused(service: Service) -> None:
    """Publishing with an expiry in the past is refused."""
    with pytest.raises(InvalidInput):
        await publish_alert(service.store, _alert(expires_at="2020-01-01T00:00:00+08:00"), None)


async def test_regions_and_groups_by_catalogue_name_are_stored_as_codes(
        service: Service, make_subscriber: SubscriberFactory, receiver: RunningReceiver) -> None:
    """`城区` and `老年人` target like 140402 and elderly, and the stored alert carries the codes."""
    await make_subscriber(contacts={"webhook": receiver.url_for("/n")}, region="140402", groups=["elderly"])
    alert, _ = await publish_alert(service.store, _alert(regions=["城区"], groups=["老年人"]), None)
    assert alert.targeted == 1
    assert (alert.target_regions, alert.target_groups) == (["140402"], ["elderly"])


async def test_a_name_and_its_code_are_the_same_request(service: Service) -> None:
    """Retrying with the code where the first request gave the name returns the same alert, not a conflict."""
    first, _ = await publish_alert(service.store, _alert(regions=["郊区"], idempotency_key="k-names"), None)
    again, created = await publish_alert(service.store, _alert(regions=["140411"], idempotency_key="k-names"), None)
    assert again.id == first.id and not created


async def test_every_problem_of_an_alert_body_is_reported_at_once(service: Service) -> None:
    """A bad severity and an unknown topic, district and group come back together, nearest names suggested."""
    with pytest.raises(InvalidInput) as caught:
        await check_alert(service.store, {"topic": "env.heavy-polution", "headline": "x", "severity": "huge",
                                          "regions": ["城西", "140402"], "groups": ["老人"]})
    errors = {(e.field, e.message) for e in caught.value.errors}
    assert {field for field, _ in errors} == {"severity", "topic", "regions", "groups"}
    assert ("regions", "unknown region '城西' (did you mean 城区?)") in errors
    assert ("topic", "unknown topic 'env.heavy-polution' (did you mean env.heavy-pollution?)") in errors
