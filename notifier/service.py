"""The running service's parts, opened and closed together: store, catalogue, the one shared HTTP session,
channel adapters, renderer and dispatcher. The web app, the CLI and the demo all build on `Service`."""

from __future__ import annotations

import asyncio
import logging
import secrets
from collections.abc import Mapping
from urllib.parse import urlsplit

import aiohttp
from pydantic import ValidationError

from channels.base import Channel, ChannelContext
from channels.registry import UnknownChannelError, factory_for, module_of
from channels.ssrf import GuardedResolver
from channels.webhook import WebhookConfig
from notifier.catalogue import Catalogue
from notifier.compliance import OverdueNotices, contact_warnings
from notifier.config import Settings
from notifier.config_errors import ConfigError, channel_error, unknown_channel
from notifier.database import city_catalogue, open_database, seed_catalogue
from notifier.dispatch import Dispatcher
from notifier.i18n import N_, Said
from notifier.keyring import Keyring, number_digest_key
from notifier.keys import KnownKeys
from notifier.metrics import Metrics
from notifier.receipts import call_policies
from notifier.rendering import Renderer
from notifier.report_applier import ReportApplier
from notifier.report_batches import ReportBatches
from notifier.store import Store

__all__ = ["ConfigError", "Service"]

log = logging.getLogger("notifier.service")

# Channel kinds that work with no configuration section at all.
ALWAYS_ON = ("webhook",)

# What an operator is told at start-up about a configuration that works but will disappoint (one place).
WARN_SMS_RECEIPTS_REFUSED = ("[channels.sms] receipt_token is not set: delivery reports will be refused, so "
                             "no SMS will ever count as reached")
WARN_NO_VERIFICATION_TEMPLATE = ("[channels.sms] verification_template_code is not set: /subscribe cannot text "
                                 "a code, so it offers no SMS sign-up (set an approved template with ${code})")
WARN_VOICE_RECEIPTS_REFUSED = ("[channels.voice] receipt_token is not set: call results will be refused, so no "
                               "call will ever count as reached nor an unanswered one be called again")
TEMPLATES_PROBLEM = N_("[templates] path: %(problem)s")


def configured_kinds(settings: Settings) -> list[str]:
    """The channel kinds this deployment can send on: webhook always, others once their section exists."""
    kinds = list(ALWAYS_ON)
    kinds += [kind for kind in settings.channels if kind not in kinds]
    return kinds


def webhook_allows_private(settings: Settings) -> bool:
    """`[channels.webhook] allow_private_networks`, read through the adapter's own model ("false" is False)."""
    return WebhookConfig.model_validate(settings.channels.get("webhook", {})).allow_private_networks


def build_channels(settings: Settings, context: ChannelContext) -> dict[str, Channel]:
    """Every configured channel's adapter, each validating its own section; ConfigError names the first section
    that is wrong (an unknown kind, a missing or misspelt key, a value out of its choices)."""
    channels: dict[str, Channel] = {}
    for kind in configured_kinds(settings):
        section: Mapping[str, object] = settings.channels.get(kind, {})
        try:
            channels[kind] = factory_for(kind)(section, context)
        except UnknownChannelError as exc:
            raise unknown_channel(exc.kind, exc.known) from None
        except (ValidationError, ValueError, TypeError) as exc:
            raise channel_error(kind, module_of(kind), exc) from None
    return channels


def catalogue_and_renderer(settings: Settings) -> tuple[Catalogue, Renderer]:
    """The catalogue and the template renderer over it; ConfigError when either file or folder cannot be used.
    Needs no database: `templates check` uses it alone."""
    catalogue = city_catalogue(settings)
    try:
        renderer = Renderer(settings.templates.path, public_url=settings.server.base_url(), catalogue=catalogue)
    except ValueError as exc:
        raise ConfigError(Said(TEMPLATES_PROBLEM, {"problem": str(exc)})) from None
    return catalogue, renderer


def outbound_session(resolver: GuardedResolver, connections: int) -> aiohttp.ClientSession:
    """The one HTTP session every channel sends on, its connections judged by `resolver` (the SSRF guard)."""
    # More connections than sends in flight only adds handshakes and loop overhead (measured: 100 connections
    # sent ~2.4x the requests per second of 1,000 on this machine's bare loop).
    connector = aiohttp.TCPConnector(resolver=resolver, limit=connections)
    # No cookie jar: an endpoint's cookie would otherwise go back to it and to every other organisation's
    # endpoint on its host (a relay), and the jar would grow with every endpoint that sets one.
    return aiohttp.ClientSession(connector=connector, trust_env=False, cookie_jar=aiohttp.DummyCookieJar())


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

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.metrics = Metrics()
        self.store: Store
        self.catalogue: Catalogue
        self.http: aiohttp.ClientSession
        self.channels: dict[str, Channel] = {}
        self.renderer: Renderer
        self.dispatcher: Dispatcher
        self.reports: ReportBatches  # the delivery reports of the callback requests, stored a batch at a time
        self.applier: ReportApplier | None = None  # … and applied after
        self.secret: Keyring
        self.known_keys = KnownKeys()  # publishing keys found valid lately (a publish confirms them as it stores)
        self._worker: asyncio.Task[None] | None = None
        self._stop = asyncio.Event()

    async def open(self) -> None:
        """Open every part; on any failure, close what was opened and raise: ConfigError for a wrong channel
        section, catalogue or templates folder (found before the database is touched), DatabaseUnavailable when
        the store cannot be opened."""
        try:
            self._open_channels()
            self.catalogue, self.renderer = catalogue_and_renderer(self.settings)
            self.store = await open_database(self.settings)
            await self._open_core()
        except BaseException:
            await self.close()
            raise

    def _open_channels(self) -> None:
        try:
            allow_private = webhook_allows_private(self.settings)
        except ValidationError as exc:
            raise channel_error("webhook", module_of("webhook"), exc) from None
        resolver = GuardedResolver(allow_private=allow_private, exempt_hosts=_provider_hosts(self.settings))
        self.http = outbound_session(resolver, self.settings.worker.concurrency)
        context = ChannelContext(http=self.http, public_url=self.settings.server.base_url())
        self.channels = build_channels(self.settings, context)
        sms = self.settings.channels.get("sms")
        if sms is not None and not sms.get("receipt_token"):
            log.warning(WARN_SMS_RECEIPTS_REFUSED)
        if sms is not None and not sms.get("verification_template_code"):
            log.warning(WARN_NO_VERIFICATION_TEMPLATE)
        voice = self.settings.channels.get("voice")
        if voice is not None and not voice.get("receipt_token"):
            log.warning(WARN_VOICE_RECEIPTS_REFUSED)

    async def _open_core(self) -> None:
        await seed_catalogue(self.store, self.catalogue)
        server = self.settings.server
        generated = None if server.secret else await self.store.set_meta_default("server_secret",
                                                                                   secrets.token_urlsafe(32))
        self.secret = server.keyring(generated)  # signs links; old keys still verify (notifier/keyring.py)
        self.store.number_key = number_digest_key(self.secret)
        overdue = None
        if self.settings.departments:
            overdue = OverdueNotices(self.store, self.settings.departments, self.channels, self.catalogue)
            for warning in contact_warnings(self.settings.departments, await self.store.list_topics(), self.channels):
                log.warning(warning)
        self.dispatcher = Dispatcher(self.store, self.channels, self.renderer, self.settings.worker,
                                     metrics=self.metrics, secret=self.secret,
                                     public_url=self.settings.server.base_url(), overdue=overdue,
                                     approval=self.settings.approval)
        self.store.fanned_out_here = self.dispatcher.wake  # a large publish's, added after its answer
        self.applier = ReportApplier(self.store, call_policies(self.channels), count=self.metrics.count_receipts,
                                     sending=self.dispatcher.sending, queued=self.dispatcher.queued_rows)
        self.reports = ReportBatches(self.store, self.applier)

    def start_worker(self) -> None:
        """Start delivering (if `[worker] enabled`) and applying the delivery reports stored (always: the reports
        a stopped process left, and those the callbacks store)."""
        if self.applier is not None:
            self.applier.start()
        if self._worker is None and self.settings.worker.enabled:
            self._stop.clear()
            self._worker = asyncio.create_task(self.dispatcher.run(self._stop))

    async def stop_worker(self) -> None:
        if self._worker is not None:
            self._stop.set()
            self.dispatcher.wake()
            try:  # not wait_for, which can swallow our own cancellation (notifier.waiting): close() would go on
                async with asyncio.timeout(self.settings.worker.lease_seconds):
                    await self._worker  # cancelled with us, or at the timeout
            except TimeoutError:
                log.warning("worker did not stop in time; its leases will be reclaimed")
            self._worker = None

    async def close(self) -> None:
        """Close whatever is open (safe to call again, or after a failed `open`)."""
        await self.stop_worker()
        if self.applier is not None:
            await self.applier.close()
        channels, self.channels = self.channels, {}
        for channel in channels.values():
            await channel.aclose()
        if (http := self.__dict__.pop("http", None)) is not None:
            await http.close()
        if (store := self.__dict__.pop("store", None)) is not None:
            await store.close()

    async def __aenter__(self) -> Service:
        await self.open()  # releases whatever it opened before a failure
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()
