"""The SMS channel: one kind, several providers behind it, chosen by `[channels.sms] provider`.

    provider = "aliyun"   → channels.sms.aliyun  (dysmsapi 2017-05-25, SendSms, ACS3-HMAC-SHA256 / RPC signing)
    provider = "tencent"  → channels.sms.tencent (API 3.0 2021-01-11, SendSms, TC3-HMAC-SHA256)

Every provider module exposes `create(config, context) -> Channel`, `parse_receipts(body) -> list[Receipt]` (the
two steps the web layer takes apart: `pushed_reports(body)`, then `receipts_of(report) -> list[Receipt]` each),
`parse_uplink(body)` and `RECEIPT_ACK`, and validates its own section.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from channels.base import Channel, ChannelContext
from channels.registry import provider_channel

PROVIDERS = {"aliyun": "channels.sms.aliyun", "tencent": "channels.sms.tencent"}


def create(config: Mapping[str, Any], context: ChannelContext) -> Channel:
    """The registry's factory for kind "sms": the configured provider's adapter."""
    return provider_channel("sms", PROVIDERS, config, context)
