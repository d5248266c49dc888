"""Fixtures for channel tests: the bundled fake receiver on loopback, HTTP sessions guarded like the service's,
and a factory for webhook channels."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterable
from typing import Any

import aiohttp
import pytest

from channels.base import ChannelContext
from channels.ssrf import GuardedResolver
from channels.webhook import WebhookChannel, create
from notifier.fakes.webhook_receiver import RunningReceiver, start_receiver

SessionFactory = Callable[..., aiohttp.ClientSession]
WebhookChannelFactory = Callable[..., WebhookChannel]


@pytest.fixture
async def receiver() -> AsyncIterator[RunningReceiver]:
    running = await start_receiver()
    yield running
    await running.stop()


@pytest.fixture
async def make_session() -> AsyncIterator[SessionFactory]:
    """Yields `create(allow_private=False, exempt_hosts=())`: a session whose connector has the SSRF resolver."""
    sessions: list[aiohttp.ClientSession] = []

    def create_session(*, allow_private: bool = False, exempt_hosts: Iterable[str] = ()) -> aiohttp.ClientSession:
        resolver = GuardedResolver(allow_private=allow_private, exempt_hosts=exempt_hosts)
        session = aiohttp.ClientSession(connector=aiohttp.TCPConnector(resolver=resolver))
        sessions.append(session)
        return session

    yield create_session
    for session in sessions:
        await session.close()


@pytest.fixture
def webhook_channel(make_session: SessionFactory) -> WebhookChannelFactory:
    """Yields `create(session=None, **config)`; loopback is allowed unless the test says otherwise."""

    def create_channel(session: aiohttp.ClientSession | None = None, **config: Any) -> WebhookChannel:
        config.setdefault("allow_private_networks", True)
        http = session or make_session(allow_private=config["allow_private_networks"])
        return create(config, ChannelContext(http=http, public_url="http://127.0.0.1:8080"))

    return create_channel
