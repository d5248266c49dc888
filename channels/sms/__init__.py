"""The SMS channel: one kind, several providers behind it, chosen by `[channels.sms] provider`.

    provider = "aliyun"   → channels.sms.aliyun  (dysmsapi 2017-05-25, SendSms, ACS3-HMAC-SHA256 / RPC signing)
    provider = "tencent"  → channels.sms.tencent (API 3.0 2021-01-11, SendSms, TC3-HMAC-SHA256)

Every provider module exposes `create(config, context) -> Channel` and validates its own section.
"""

from __future__ import annotations

import importlib
from collections.abc import Mapping
from typing import Any

from channels.base import Channel, ChannelContext

PROVIDERS = {"aliyun": "channels.sms.aliyun", "tencent": "channels.sms.tencent"}


def create(config: Mapping[str, Any], context: ChannelContext) -> Channel:
    """The registry's factory for kind "sms": delegate to the configured provider's module."""
    provider = config.get("provider")
    if provider not in PROVIDERS:
        raise ValueError(f"[channels.sms] provider must be one of {', '.join(PROVIDERS)}; got {provider!r}")
    module = importlib.import_module(PROVIDERS[str(provider)])
    channel: Channel = module.create(config, context)
    return channel
