"""Deleting a subscriber on SQLite leaves no byte of their contacts: `secure_delete` zeroes the pages and the WAL is
checkpointed and truncated (docs/erasure.md)."""

from __future__ import annotations

from notifier.fakes.smtp import RunningSmtp
from notifier.service import Service
from notifier.subscribers import create_subscriber
from subscriptions.models import SubscriberIn
from tests.byte_scan import traces
from tests.conftest import SubscriberFactory, settle
from tests.test_forget import EMAIL, MOBILE, _alert


async def test_byte_scan_finds_no_trace_of_a_forgotten_subscriber(
        service: Service, make_subscriber: SubscriberFactory, smtp: RunningSmtp) -> None:
    """After deletion neither notifier.db nor notifier.db-wal holds the number (E.164, national, UTF-16) or
    the email, though both were there before."""
    record = await make_subscriber(contacts={"sms": MOBILE, "email": EMAIL}, channels=["email"], groups=["elderly"])
    await make_subscriber(contacts={"email": "neighbour@example.org"})
    await _alert(service)
    await settle(service)
    assert traces(service, MOBILE, EMAIL)  # the scan can see them while they are held
    assert await service.store.forget_subscriber(record.id)
    assert traces(service, MOBILE, EMAIL) == []
    assert traces(service, "neighbour@example.org")  # only the one who asked is gone


async def test_byte_scan_finds_no_trace_of_a_forgotten_proxys_people(service: Service) -> None:
    """Deleting a proxy deletes the labels of the people it told, to the last byte, though alerts reached them."""
    label = "3号楼2单元 王奶奶"
    body = SubscriberIn.model_validate({
        "contacts": {"email": "grid.worker@example.org"}, "region": "140402", "role": "proxy",
        "assists": [{"label": label, "region": "140402", "groups": ["elderly"]}],
        "subscriptions": [{"topic": "env.heavy-pollution", "channels": ["email"]}]})
    proxy, _ = await create_subscriber(service.store, body, allow_private_webhooks=True)
    await _alert(service)
    await settle(service)
    assert traces(service, label)
    assert await service.store.forget_subscriber(proxy.id)
    assert traces(service, label, "grid.worker@example.org") == []
