"""What a worker reads of an alert before it sends it (`Store.alert_to_send`, one statement): the alert as stored,
its topic as the catalogue gives it, and whether assisted people are among its targets (their proxies' messages
list them)."""

from __future__ import annotations

import pytest

from notifier.models import AlertIn, Severity
from notifier.publish import publish_alert
from notifier.service import Service
from notifier.store.records import AssistedRecord
from notifier.subscribers import create_subscriber
from subscriptions.models import SubscriberIn
from tests.conftest import SubscriberFactory

pytestmark = pytest.mark.both_backends  # SQLite and PostgreSQL (tests/conftest.py)

RED = AlertIn(topic="env.heavy-pollution", headline="重污染天气红色预警", severity=Severity.EXTREME)


async def test_an_alert_is_read_with_its_topic_as_the_catalogue_gives_it(
        service: Service, make_subscriber: SubscriberFactory) -> None:
    await make_subscriber(contacts={"sms": "+8613800000001"}, topic="env.heavy-pollution")
    alert, _ = await publish_alert(service.store, RED, None)
    assert await service.store.alert_to_send(alert.id) == (
        await service.store.get_alert(alert.id), await service.store.get_topic("env.heavy-pollution"), False)


async def test_an_alert_whose_targets_include_assisted_people_says_so(service: Service) -> None:
    proxy, _ = await create_subscriber(service.store, SubscriberIn.model_validate({
        "contacts": {"sms": "13900000009"}, "region": "140402", "role": "proxy",
        "subscriptions": [{"topic": "env.heavy-pollution", "channels": ["sms"]}]}), allow_private_webhooks=False)
    await service.store.import_assisted([(proxy.id, [
        AssistedRecord(id=f"{1:032x}", label="3号楼独居老人", region="140402", groups=[], seq=1)])])
    alert, _ = await publish_alert(service.store, RED, None)
    _, _, assisted = await service.store.alert_to_send(alert.id)
    assert assisted


async def test_an_alert_that_is_not_there_reads_as_nothing(service: Service) -> None:
    assert await service.store.alert_to_send("no-such-alert") == (None, None, False)
