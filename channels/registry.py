"""Which adapter serves which channel kind: a hand-written table of built-ins plus the `notifier.channels`
entry-point group for third-party adapters. A kind claimed twice is an error, never a silent override."""

from __future__ import annotations

import importlib
from collections.abc import Mapping
from importlib.metadata import entry_points
from typing import Any

from channels.base import Channel, ChannelContext, ChannelFactory

# kind -> "module:factory"; imported lazily so that an unused adapter costs nothing.
BUILTINS: dict[str, str] = {
    "webhook": "channels.webhook:create",
    "email": "channels.email:create",
    "sms": "channels.sms:create",
    "wechat": "channels.wechat:create",
    "voice": "channels.voice:create",
}

ENTRY_POINT_GROUP = "notifier.channels"


class DuplicateChannelError(RuntimeError):
    """Two adapters claim the same channel kind."""


class UnknownChannelError(KeyError):
    """No adapter serves this kind; carries the kind and the known kinds so that callers can word it."""

    def __init__(self, kind: str, known: list[str]) -> None:
        super().__init__(f"unknown channel kind {kind!r}; known: {', '.join(known)}")
        self.kind = kind
        self.known = known


def _load(target: str) -> ChannelFactory:
    module_name, _, attr = target.partition(":")
    factory: ChannelFactory = getattr(importlib.import_module(module_name), attr)
    return factory


def available() -> dict[str, str]:
    """Every known kind with where its factory lives."""
    kinds = dict(BUILTINS)
    for ep in entry_points(group=ENTRY_POINT_GROUP):
        if ep.name in kinds:
            raise DuplicateChannelError(f"channel kind {ep.name!r} is provided by {kinds[ep.name]} and {ep.value}")
        kinds[ep.name] = ep.value
    return kinds


def factory_for(kind: str) -> ChannelFactory:
    """The factory of one kind; UnknownChannelError (a KeyError) names the known kinds."""
    kinds = available()
    if kind not in kinds:
        raise UnknownChannelError(kind, sorted(kinds))
    return _load(kinds[kind])


def module_of(kind: str) -> str | None:
    """The module that holds a kind's factory (where its configuration model lives), or None when unknown."""
    return available().get(kind, "").partition(":")[0] or None


def provider_channel(kind: str, providers: Mapping[str, str], config: Mapping[str, Any],
                     context: ChannelContext) -> Channel:
    """The adapter of a kind served by several providers (sms, voice): `[channels.<kind>] provider` names the
    module (in `providers`), whose `create` validates the section and builds it."""
    provider = config.get("provider")
    if provider not in providers:
        raise ValueError(f"[channels.{kind}] provider must be one of {', '.join(providers)}; got {provider!r}")
    module = importlib.import_module(providers[str(provider)])
    channel: Channel = module.create(config, context)
    return channel
