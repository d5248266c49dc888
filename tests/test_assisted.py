"""Assisted reach: people with no contact of their own, told by a proxy (a grid worker or a caregiver). They are in
the frozen target set and counted by region and group; each has one `proxy` delivery, `sent` when the proxy's
message was accepted and `delivered` when the proxy confirms; the proxy's own message counts nowhere unless the
proxy is a target itself."""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import urlsplit

import pytest
from aiohttp.test_utils import TestClient, TestServer

from channels.base import Message
from notifier.assist import AssistNotes, issued_at
from notifier.coverage import alert_coverage
from notifier.fakes.webhook_receiver import RunningReceiver
from notifier.models import AlertIn
from notifier.publish import publish_alert
from notifier.receipts import apply_sms_replies
from notifier.selfservice import export
from notifier.service import Service
from notifier.store.records import AssistItem, DeliveryRow, SubscriberRecord
from notifier.subscribers import create_subscriber
from notifier.web import create_app
from subscriptions.models import SubscriberIn
from tests.conftest import settle

pytestmark = pytest.mark.both_backends

GRANNY = {"label": "3号楼2单元 王奶奶", "region": "140411", "groups": ["elderly"]}
NEIGHBOUR = {"label": "5号楼 李大爷", "region": "140402", "groups": ["disabled"]}
PROXY_MOBILE = "+8613900000009"


@pytest.fixture
async def client(service: Service) -> AsyncIterator[TestClient[Any, Any]]:
    """Our server, where confirm links and pages are answered."""
    server = TestServer(create_app(service.settings, service=service), host="127.0.0.1")
    async with TestClient(server) as running:
        yield running


async def _proxy(service: Service, receiver: RunningReceiver, *, groups: list[str] | None = None,
                 people: list[dict[str, Any]] | None = None) -> SubscriberRecord:
    body = SubscriberIn.model_validate({
        "contacts": {"webhook": receiver.url_for("/grid"), "sms": PROXY_MOBILE}, "region": "140402",
        "groups": groups or [], "role": "proxy", "assists": people if people is not None else [GRANNY, NEIGHBOUR],
        "subscriptions": [{"topic": "env.heavy-pollution", "channels": ["webhook"]}]})
    record, _ = await create_subscriber(service.store, body, allow_private_webhooks=True)
    return record


async def _publish(service: Service, **fields: Any) -> str:
    alert, _ = await publish_alert(service.store, AlertIn.model_validate(
        {"topic": "env.heavy-pollution", "headline": "重污染天气橙色预警", "severity": "severe", **fields}), None)
    return alert.id


async def _rows(service: Service, alert_id: str, channel: str) -> list[DeliveryRow]:
    rows, _ = await service.store.list_deliveries(alert_id, 100, None, channel=channel)
    return rows


def _assisted(receiver: RunningReceiver) -> list[dict[str, Any]]:
    bodies = [json.loads(r.body) for r in receiver.requests_to("/grid")]
    assert len(bodies) == 1
    listed: list[dict[str, Any]] = bodies[0]["assisted"]
    return listed


async def test_assisted_people_are_targeted_and_counted_by_region_and_group(
        service: Service, receiver: RunningReceiver) -> None:
    """An alert for the elderly targets the proxy's elderly person (not the proxy, who is in no group): counted
    under their district and group; their `proxy` delivery is sent once the proxy's message is accepted, and the
    proxy's message itself is counted on no channel."""
    await _proxy(service, receiver)
    alert_id = await _publish(service, groups=["elderly"])
    await settle(service)
    coverage = await alert_coverage(service.store, alert_id)
    assert (coverage.targeted, coverage.accepted, coverage.reached) == (1, 1, 0)
    assert coverage.by_region["140411"].targeted == 1 and coverage.by_group["elderly"].targeted == 1
    assert set(coverage.by_channel) == {"proxy"}
    assert (coverage.by_channel["proxy"].sent, coverage.by_channel["proxy"].awaiting_receipt) == (1, 1)
    assert [r.status for r in await _rows(service, alert_id, "proxy")] == ["sent"]


async def test_the_proxys_webhook_lists_whom_to_tell_with_a_confirm_link_each(
        service: Service, receiver: RunningReceiver) -> None:
    """One message to the proxy, whose body carries `assisted` [{id, label, confirm_url}] for the people targeted."""
    await _proxy(service, receiver)
    await _publish(service)
    await settle(service)
    listed = _assisted(receiver)
    assert sorted(p["label"] for p in listed) == sorted([GRANNY["label"], NEIGHBOUR["label"]])
    assert all(set(p) == {"id", "label", "confirm_url"} and "/assist/confirm/" in p["confirm_url"] for p in listed)


async def test_a_confirmation_counts_the_person_as_reached_once(
        service: Service, receiver: RunningReceiver, client: TestClient[Any, Any]) -> None:
    """POST to a confirm link (no key): the person is reached on channel proxy; a repeat answers the same and
    changes nothing."""
    await _proxy(service, receiver)
    alert_id = await _publish(service, groups=["elderly"])
    await settle(service)
    path = urlsplit(_assisted(receiver)[0]["confirm_url"]).path
    first = await client.post(path)
    assert first.status == 200, await first.text()
    again = await client.post(path)
    assert (await first.json(), again.status) == (await again.json(), 200)
    assert (await first.json())["status"] == "delivered"
    coverage = await alert_coverage(service.store, alert_id)
    assert (coverage.reached, coverage.by_channel["proxy"].delivered) == (1, 1)
    assert coverage.by_group["elderly"].reached == 1


async def test_a_tampered_confirm_link_is_404_and_changes_nothing(
        service: Service, receiver: RunningReceiver, client: TestClient[Any, Any]) -> None:
    """A confirm link with one character changed is not found; nobody counts as reached."""
    await _proxy(service, receiver)
    alert_id = await _publish(service, groups=["elderly"])
    await settle(service)
    path = urlsplit(_assisted(receiver)[0]["confirm_url"]).path
    tampered = path[:-3] + ("AAA" if not path.endswith("AAA") else "BBB")
    assert (await client.post(tampered)).status == 404
    assert (await alert_coverage(service.store, alert_id)).reached == 0


async def test_a_proxy_who_is_targeted_gets_one_message_that_counts_as_its_own(
        service: Service, receiver: RunningReceiver) -> None:
    """A proxy in the elderly group is a target itself: its one message carries the list and counts on its own
    channel; its person counts on proxy."""
    await _proxy(service, receiver, groups=["elderly"])
    alert_id = await _publish(service, groups=["elderly"])
    await settle(service)
    assert [p["label"] for p in _assisted(receiver)] == [GRANNY["label"]]
    coverage = await alert_coverage(service.store, alert_id)
    assert (coverage.targeted, coverage.reached) == (2, 1)
    assert (coverage.by_channel["webhook"].delivered, coverage.by_channel["proxy"].sent) == (1, 1)


async def test_when_every_channel_of_the_proxy_fails_its_people_fail_too(
        service: Service, receiver: RunningReceiver) -> None:
    """A proxy whose endpoint refuses the message: nobody can tell its people, whose deliveries fail."""
    receiver.script("/grid", [404])
    await _proxy(service, receiver)
    alert_id = await _publish(service, groups=["elderly", "disabled"])
    await settle(service)
    rows = await _rows(service, alert_id, "proxy")
    assert [r.status for r in rows] == ["failed", "failed"]
    assert all(r.last_error and r.last_error.startswith("proxy not told") for r in rows)
    coverage = await alert_coverage(service.store, alert_id)
    assert coverage.unreachable.get("all_failed") == 2


async def test_an_sms_reply_of_a_persons_number_confirms_them(
        service: Service, receiver: RunningReceiver) -> None:
    """From the proxy's number, a reply "2" confirms the proxy's person number 2 for the latest alert."""
    proxy = await _proxy(service, receiver)
    alert_id = await _publish(service)
    await settle(service)
    await apply_sms_replies(service.store, [(PROXY_MOBILE, "2")])
    rows = {r.subscriber_id: r.status for r in await _rows(service, alert_id, "proxy")}
    numbers = {p.seq: p.id for p in proxy.assists}
    assert (rows[numbers[2]], rows[numbers[1]]) == ("delivered", "sent")


async def test_cancelling_the_alert_stops_people_not_yet_relayed(service: Service, receiver: RunningReceiver) -> None:
    """Before the proxy's message goes out, a cancel stops the people's deliveries too."""
    await _proxy(service, receiver)
    alert_id = await _publish(service)
    await service.store.cancel_alert(alert_id, None, time.time())
    assert {r.status for r in await _rows(service, alert_id, "proxy")} == {"cancelled"}


async def test_erasing_the_proxy_erases_its_people_and_keeps_coverage(
        service: Service, receiver: RunningReceiver) -> None:
    """Deleting a proxy deletes its people's labels; the alert's figures do not change."""
    proxy = await _proxy(service, receiver)
    alert_id = await _publish(service)
    await settle(service)
    before = await alert_coverage(service.store, alert_id)
    assert await service.store.forget_subscriber(proxy.id)
    assert await service.store.add_assisted(proxy.id, []) is None
    assert (await service.store.assist_lists([(alert_id, proxy.id)])) == {}
    after = await alert_coverage(service.store, alert_id)
    assert (after.targeted, after.accepted) == (before.targeted, before.accepted)


async def test_an_update_goes_to_the_frozen_assisted_targets(service: Service, receiver: RunningReceiver) -> None:
    """An update of an alert reaches its frozen assisted people again, through their proxy."""
    await _proxy(service, receiver)
    alert_id = await _publish(service, groups=["elderly"])
    await settle(service)
    update_id = await _publish(service, msg_type="update", references=alert_id, groups=["elderly"])
    await settle(service)
    coverage = await alert_coverage(service.store, update_id)
    assert (coverage.targeted, coverage.by_channel["proxy"].sent) == (1, 1)
    assert len(receiver.requests_to("/grid")) == 2


async def test_a_proxys_own_download_holds_its_list(service: Service, receiver: RunningReceiver) -> None:
    """What a proxy downloads from its manage page includes its people, numbered, in its own words."""
    proxy = await _proxy(service, receiver)
    record = await service.store.get_subscriber(proxy.id)
    assert record is not None
    held = await export(service.store, service.catalogue, record)
    assert [(p["number"], p["label"]) for p in held["assists"]] == [(1, GRANNY["label"]), (2, NEIGHBOUR["label"])]


async def test_a_long_list_fits_an_sms_and_points_to_the_page(service: Service) -> None:
    """Sixty people do not fit one long SMS: the first ones are listed, the rest counted, and the page has them all."""
    people = [AssistItem(f"d{n}", f"p{n}", n, f"{n}号楼 住户", "deferred") for n in range(1, 61)]
    message = Message(alert_id="a" * 32, topic="env.heavy-pollution", msg_type="alert", severity="severe",
                      urgency="expected", level="orange", locale="zh-CN", headline="重污染天气橙色预警",
                      text="【长治市人民政府】重污染天气橙色预警：减少户外活动。")
    notes = AssistNotes(service.store, "secret", "https://notify.example")
    sms = notes.decorate(message, "sms", "b" * 32, people, issued_at(0.0), limit=500)
    assert len(sms.text) <= 500 and "（1）1号楼 住户" in sms.text and "（60）" not in sms.text
    assert "位见名单页面" in sms.text and "https://notify.example/assist/" in sms.text
    assert len(sms.payload["assisted"]) == 60
