"""The running service's parts, opened and closed together: store, catalogue, the one shared HTTP session,
channel adapters, renderer and dispatcher. The web app, the CLI and the demo all build on `Service`."""

from __future__ import annotations

import asyncio
import logging
import secrets
from collections.abc import Callable
from urllib.parse import urlsplit

import aiohttp

from channels.base import Channel, ChannelContext
from channels.registry import factory_for
from channels.ssrf import GuardedResolver
from channels.webhook import WebhookConfig
from notifier.catalogue import Catalogue, load_catalogue
from notifier.config import Settings
from notifier.dispatch import Dispatcher
from notifier.metrics import Metrics
from notifier.rendering import Renderer
from notifier.store import Store, open_store

log = logging.getLogger("notifier.service")

# Channel kinds that work with no configuration section at all.
ALWAYS_ON = ("webhook",)


def configured_kinds(settings: Settings) -> list[str]:
    """The channel kinds this deployment can send on: webhook always, others once their section exists."""
    kinds = list(ALWAYS_ON)
    kinds += [kind for kind in settings.channels if kind not in kinds]
    return kinds


def webhook_allows_private(settings: Settings) -> bool:
    """`[channels.webhook] allow_private_networks`, read through the adapter's own model ("false" is False)."""
    return WebhookConfig.model_validate(settings.channels.get("webhook", {})).allow_private_networks


def _provider_hosts(settings: Settings) -> set[str]:
    """Hosts of configured provider endpoints: trusted by the operator, so the SSRF guard lets them through."""
    hosts = set()
    for kind, section in settings.channels.items():
        for key in ("endpoint", "host", "token_endpoint"):
            value = section.get(key)
            if isinstance(value, str) and kind != "webhook":
                hosts.add(urlsplit(value).hostname or value)
    return {h for h in hosts if h}


class Service:
    """Everything a notifier process holds open."""

    def __init__(self, settings: Settings, *, on_result: Callable[[str, str], None] | None = None) -> None:
        self.settings = settings
        self._on_result = on_result
        self.metrics = Metrics()
        self.store: Store
        self.catalogue: Catalogue
        self.http: aiohttp.ClientSession
        self.channels: dict[str, Channel] = {}
        self.renderer: Renderer
        self.dispatcher: Dispatcher
        self.secret: str = ""
        self._worker: asyncio.Task[None] | None = None
        self._stop = asyncio.Event()

    async def open(self) -> None:
        self.store = await open_store(self.settings)
        self.catalogue = load_catalogue(self.settings.catalogue.path)
        await self.store.add_catalogue(
            [(r.code, r.name, r.name_en) for r in self.catalogue.regions],
            [(g.code, g.name, g.name_en) for g in self.catalogue.groups],
            [(d.code, d.name, d.name_en) for d in self.catalogue.domains],
            [t.model_dump() for t in self.catalogue.topics])
        configured = self.settings.server.secret
        self.secret = (configured.get_secret_value() if configured else
                       await self.store.set_meta_default("server_secret", secrets.token_urlsafe(32)))
        resolver = GuardedResolver(allow_private=webhook_allows_private(self.settings),
                                   exempt_hosts=_provider_hosts(self.settings))
        # More connections than sends in flight only adds handshakes and loop overhead (measured: 100 connections
        # sent ~2.4x the requests per second of 1,000 on this machine's bare loop).
        connector = aiohttp.TCPConnector(resolver=resolver, limit=self.settings.worker.concurrency)
        self.http = aiohttp.ClientSession(connector=connector, trust_env=False)
        context = ChannelContext(http=self.http, public_url=self.settings.server.base_url())
        for kind in configured_kinds(self.settings):
            self.channels[kind] = factory_for(kind)(self.settings.channels.get(kind, {}), context)
        if "sms" in self.channels and not self.settings.channels["sms"].get("receipt_token"):
            log.warning("[channels.sms] receipt_token is not set: delivery reports will be refused, so no SMS "
                        "will ever count as reached")
        self.renderer = Renderer(self.settings.templates.path, public_url=self.settings.server.base_url(),
                                 catalogue=self.catalogue)
        self.dispatcher = Dispatcher(self.store, self.channels, self.renderer, self.settings.worker,
                                     on_result=self._on_result, metrics=self.metrics,
                                     secret=self.secret, public_url=self.settings.server.base_url())

    def start_worker(self) -> None:
        if self._worker is None and self.settings.worker.enabled:
            self._stop.clear()
            self._worker = asyncio.create_task(self.dispatcher.run(self._stop))

    async def stop_worker(self) -> None:
        if self._worker is not None:
            self._stop.set()
            self.dispatcher.wake()
            try:
                await asyncio.wait_for(self._worker, timeout=self.settings.worker.lease_seconds)
            except TimeoutError:
                log.warning("worker did not stop in time; its leases will be reclaimed")
            self._worker = None

    async def close(self) -> None:
        await self.stop_worker()
        for channel in self.channels.values():
            await channel.aclose()
        if hasattr(self, "http"):
            await self.http.close()
        if hasattr(self, "store"):
            await self.store.close()

    async def __aenter__(self) -> Service:
        try:
            await self.open()
        except BaseException:
            await self.close()  # release whatever was opened before the failure
            raise
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()
