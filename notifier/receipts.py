"""What providers tell us after a send: delivery receipts, WeChat follow/unfollow events, SMS replies.

A receipt turns a `sent` delivery into `delivered` (the subscriber is reached) or `failed` (the next channel is
tried under the fallback policy). Repeats are dropped by their key; a receipt for a message we do not know is
recorded and otherwise ignored. Opt-outs stop the channel for that address at once.
"""

from __future__ import annotations

import logging
import time
import unicodedata
from collections.abc import Iterable, Mapping

from channels.base import Channel
from channels.voice.common import CallPolicy
from notifier.assist import confirm_replies
from notifier.store import Store

log = logging.getLogger("notifier.receipts")

# Replies that mean "stop sending me SMS" (carrier convention in mainland China, plus the Chinese word).
SMS_STOP_WORDS = frozenset({"T", "TD", "R", "N", "退订", "退定", "取消", "STOP", "UNSUBSCRIBE"})


def call_policy(channel: Channel | None) -> CallPolicy | None:
    """The redial rule of a channel that calls people (one that declares `max_calls` and `min_call_interval`, as
    voice does), else None: its unanswered calls are called again within those bounds."""
    max_calls, interval = getattr(channel, "max_calls", None), getattr(channel, "min_call_interval", None)
    if max_calls is None or interval is None:
        return None
    return CallPolicy(int(max_calls), float(interval))


def call_policies(channels: Mapping[str, Channel]) -> dict[str, CallPolicy]:
    """`call_policy` of every channel that has one, by kind."""
    return {kind: policy for kind, channel in channels.items() if (policy := call_policy(channel)) is not None}


async def sweep_unmatched(store: Store, now: float, max_age_days: float) -> int:
    """Retention: delete reports that matched no delivery within `max_age_days` (the worker runs it)."""
    removed = await store.sweep_early_receipts(now - max_age_days * 86400)
    if removed:
        log.info("unmatched delivery reports deleted", extra={"receipts": removed})
    return removed


def is_stop_reply(text: str) -> bool:
    """Whether an SMS reply asks to unsubscribe ("TD", "td ", "退订", full-width "ＴＤ"…)."""
    normalised = unicodedata.normalize("NFKC", text).strip().strip("。.!！").upper()
    return normalised in SMS_STOP_WORDS


async def apply_sms_replies(store: Store, replies: Iterable[tuple[str, str]]) -> int:
    """(E.164 number, text) replies; stop words unsubscribe that number from SMS, and a proxy's reply of people's
    numbers confirms them told (`notifier.assist`). Returns how many numbers were unsubscribed."""
    stopped = told = 0
    for phone, text in replies:
        if is_stop_reply(text):
            stopped += await store.disable_contacts("sms", phone, "unsubscribed by SMS reply", time.time())
        else:
            told += await confirm_replies(store, "sms", phone, text)
    if stopped:
        log.info("SMS opt-outs applied", extra={"subscribers": stopped})
    if told:
        log.info("assisted people confirmed told by SMS reply", extra={"people": told})
    return stopped


async def wechat_unfollowed(store: Store, openid: str) -> int:
    """The user unfollowed the official account: template messages would fail with 43004 from now on."""
    return await store.disable_contacts("wechat", openid, "unfollowed the official account", time.time())
