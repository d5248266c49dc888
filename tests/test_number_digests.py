"""A delivery report that names a phone number leaves only a digest keyed with the server secret (never one that a
copy of the database could be searched with), and erasure drops even that."""

from __future__ import annotations

import hashlib
import json
import time
from pathlib import Path

import pytest

from channels.base import receipt_match_key
from channels.sms.aliyun import parse_receipts
from notifier.config import load_settings
from notifier.coverage import alert_coverage
from notifier.service import Service
from notifier.states import DeliveryStatus
from notifier.store import open_store
from notifier.store.records import DeliveryUpdate
from tests.byte_scan import database_files
from tests.conftest import SubscriberFactory
from tests.test_forget import _alert

BIZ_ID = "900619^1"
PHONES = ("13800000101", "13800000102")


def _push(*phones: str, code: str = "DELIVERED") -> bytes:
    """An Aliyun SmsReport push for `phones`, all of one batch, reported at the same second with the same code."""
    return json.dumps([{"phone_number": p, "success": code == "DELIVERED", "biz_id": BIZ_ID, "err_code": code,
                        "report_time": "2026-12-04 10:00:00", "send_time": "2026-12-04 09:59:58"}
                       for p in phones]).encode()


async def _sent_batch(service: Service, make_subscriber: SubscriberFactory) -> tuple[str, dict[str, str]]:
    """Two SMS subscribers, one alert, both deliveries recorded as accepted under one BizId; (alert, phone →
    subscriber id)."""
    subscribers = {phone: (await make_subscriber(contacts={"sms": f"+86{phone}"}, channels=["sms"])).id
                   for phone in PHONES}
    alert_id = await _alert(service)
    now = time.time()
    claimed = await service.store.claim("worker-1", now, now + 60, 100)
    await service.store.record("worker-1", [
        DeliveryUpdate(d.id, alert_id, DeliveryStatus.SENT, now, provider_message_id=BIZ_ID, address=d.address)
        for d in claimed], now)
    return alert_id, subscribers


def _unkeyed_digests(phone: str) -> list[bytes]:
    """The digests an attacker holding a copy of the database could compute for a guessed number."""
    return [hashlib.sha256(f"{BIZ_ID}:{phone}".encode()).hexdigest()[:24].encode(),
            hashlib.sha256(f"{BIZ_ID}:+86{phone}".encode()).hexdigest()[:24].encode(),
            hashlib.sha256(f"{BIZ_ID}|+86{phone}".encode()).hexdigest().encode()]


def _found(service: Service, needles: list[bytes]) -> list[str]:
    return [f"{path.name}: {needle!r}" for path in database_files(service) for needle in needles
            if needle in path.read_bytes()]


async def test_reports_of_one_batch_for_two_numbers_both_count(
        service: Service, make_subscriber: SubscriberFactory) -> None:
    """Two numbers of one BizId reported at the same second with the same code are two reports, not a repeat."""
    alert_id, _ = await _sent_batch(service, make_subscriber)
    counts = await service.store.apply_receipts("sms", parse_receipts(_push(*PHONES)), time.time())
    assert counts["applied"] == 2
    again = await service.store.apply_receipts("sms", parse_receipts(_push(*PHONES)), time.time())
    assert again["duplicate"] == 2
    assert (await alert_coverage(service.store, alert_id)).reached == 2


async def test_no_unkeyed_digest_of_a_number_is_stored(service: Service, make_subscriber: SubscriberFactory) -> None:
    """After reports naming two numbers, the database holds no plain SHA-256 of BizId and number in any form."""
    await _sent_batch(service, make_subscriber)
    await service.store.apply_receipts("sms", parse_receipts(_push(*PHONES)), time.time())
    await service.store.apply_receipts("sms", parse_receipts(_push("13800000199")), time.time())  # matches nobody
    assert _found(service, [d for phone in (*PHONES, "13800000199") for d in _unkeyed_digests(phone)]) == []
    keyed = receipt_match_key(service.store.number_key, BIZ_ID, f"+86{PHONES[0]}").encode()
    assert _found(service, [keyed])  # the scan sees the keyed one: it is there, and it is not the plain one


async def test_the_digest_key_comes_from_the_server_secret(tmp_path: Path) -> None:
    """Two installations with different secrets digest the same number differently; one secret, the same way."""
    keys = []
    for name, secret in (("a", "first-secret-0123456789"), ("b", "second-secret-0123456789"),
                         ("c", "first-secret-0123456789")):
        settings = load_settings(None, {}, {"database": {"url": f"sqlite:///{tmp_path / name}.db"},
                                            "server": {"secret": secret}, "worker": {"enabled": False}})
        async with Service(settings) as service:
            keys.append(receipt_match_key(service.store.number_key, BIZ_ID, "+8613800000101"))
    assert keys[0] != keys[1] and keys[0] == keys[2]


async def test_erasure_leaves_no_digest_of_the_number(service: Service, make_subscriber: SubscriberFactory) -> None:
    """Deleting a subscriber deletes the reports that named their number: not a byte of its digest, keyed or not,
    is left in the database or its WAL, while the neighbour's report stays."""
    _, ids = await _sent_batch(service, make_subscriber)
    await service.store.apply_receipts("sms", parse_receipts(_push(*PHONES)), time.time())
    gone, kept = PHONES
    digests = {phone: [receipt_match_key(service.store.number_key, BIZ_ID, f"+86{phone}")[:24].encode(),
                       *_unkeyed_digests(phone)] for phone in PHONES}
    assert _found(service, digests[gone])
    assert await service.store.forget_subscriber(ids[gone])
    assert _found(service, digests[gone]) == []
    assert _found(service, digests[kept][:1])


async def test_a_store_opened_without_the_service_cannot_digest_numbers(tmp_path: Path) -> None:
    """Digests keyed with nothing would never match their reports again: a store whose number key was not set
    from the server secret refuses to make one, rather than making a useless one."""
    store = await open_store(load_settings(None, {"NOTIFIER_DATABASE__URL": f"sqlite:///{tmp_path / 'n.db'}"}))
    try:
        with pytest.raises(RuntimeError, match="number key is not set"):
            receipt_match_key(store.number_key, BIZ_ID, "+8613800000101")
    finally:
        await store.close()
