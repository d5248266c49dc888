"""Many SMS subscribers made at once, for tests of large fan-outs and imports."""

from __future__ import annotations

import time

from notifier.store.records import SubscriberRecord


def sms_people(count: int, topic: str = "env.heavy-pollution", *, email: bool = False) -> list[SubscriberRecord]:
    """`count` active subscribers of `topic` in region 140402, each with a mobile number of their own (and with
    `email`, an address of their own as their second channel)."""
    now = time.time()
    channels = ["sms", "email"] if email else ["sms"]
    return [SubscriberRecord(id=f"{n:032x}", region="140402", locale="zh-CN", quiet_start=None, quiet_end=None,
                             status="active", consent_source="test", consent_at=now, created_at=now,
                             contacts={"sms": f"+86139{n:08d}", **({"email": f"p{n}@example.org"} if email else {})},
                             subscriptions=[(topic, channels, 0)])
            for n in range(count)]
