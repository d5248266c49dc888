"""What the SMS providers share: the shape of an SMS reply (uplink) and the China time their callbacks are in.

A reply is personal data twice over (who wrote, what they wrote): match on it, act on it (a stop word such as
"TD" unsubscribes the number, see `notifier.receipts.is_stop_reply`), never log it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta, timezone

# China Standard Time, UTC+8 all year (no daylight saving since 1991): the providers' callbacks write local time
# without an offset. A fixed offset, so that parsing needs no tz database on the host.
CHINA_TZ = timezone(timedelta(hours=8), "Asia/Shanghai")


@dataclass(frozen=True, slots=True)
class Uplink:
    """One SMS sent by a subscriber to our number (a reply to one of our messages)."""

    phone: str  # E.164, e.g. "+8613800000001"
    content: str
    received_at: float  # unix seconds
