"""The voice channel: a text-to-speech call to a mobile or a fixed line, for people a message on a screen misses
(many elderly residents have a feature phone or a landline). One kind, two providers, chosen by
`[channels.voice] provider`:

    provider = "aliyun"   → channels.voice.aliyun  (dyvmsapi 2017-05-25, SingleCallByTts, ACS3-HMAC-SHA256)
    provider = "tencent"  → channels.voice.tencent (vms 2020-09-02, SendTtsVoice, TC3-HMAC-SHA256; mobiles only)

Every provider module exposes `create(config, context) -> Channel`, `parse_receipts(body) -> list[Receipt]` (the
two steps the web layer takes apart: `pushed_reports(body)`, then `receipts_of(report) -> list[Receipt]` each) and
`RECEIPT_ACK`, and validates its own section. A call counts as reached when its result says it was answered; the
redial rule for unanswered calls is `channels.voice.common.CallPolicy`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from channels.base import Channel, ChannelContext
from channels.registry import provider_channel

PROVIDERS = {"aliyun": "channels.voice.aliyun", "tencent": "channels.voice.tencent"}


def create(config: Mapping[str, Any], context: ChannelContext) -> Channel:
    """The registry's factory for kind "voice": the configured provider's adapter."""
    return provider_channel("voice", PROVIDERS, config, context)
