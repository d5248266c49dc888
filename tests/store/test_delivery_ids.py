"""Every delivery keeps an id of its own: the receiver's idempotency key (`webhook-id`, `Message-ID`)."""

from __future__ import annotations

import re

import pytest

from notifier.models import AlertIn
from notifier.publish import publish_alert
from notifier.service import Service
from tests.conftest import SubscriberFactory

pytestmark = pytest.mark.both_backends  # SQLite and PostgreSQL (tests/conftest.py)

HEX32 = re.compile(r"[0-9a-f]{32}")


async def test_two_fan_outs_give_every_delivery_a_distinct_32_digit_id(
        service: Service, make_subscriber: SubscriberFactory) -> None:
    """Two alerts to the same people over two channels each (the second channel waiting under fallback): every
    delivery row of both has its own 32-hex-digit id, none shared between the alerts."""
    for n in range(3):
        await make_subscriber(contacts={"sms": f"+86138000002{n:02d}", "email": f"p{n}@example.org"})
    ids: list[str] = []
    for headline in ("第一次", "第二次"):
        alert, _ = await publish_alert(service.store, AlertIn(topic="env.heavy-pollution", headline=headline,
                                                              policy="fallback"), None)
        rows, _ = await service.store.list_deliveries(alert.id, 100, None)
        assert len(rows) == 6  # 3 people × 2 channels
        ids += [r.id for r in rows]
    assert all(HEX32.fullmatch(i) for i in ids)
    assert len(set(ids)) == len(ids)
