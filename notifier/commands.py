"""What each `notifier` sub-command does, as library functions the CLI calls (and tests can call directly).
`publish` and `coverage` live in `notifier.cli_publish`."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import os
import signal
import sys
from pathlib import Path

from notifier.config import Settings, load_settings
from notifier.errors import NotifierError
from notifier.keys import create_key, revoke_key
from notifier.logs import setup_logging
from notifier.models import Role
from notifier.rendering import TemplateReport, check_templates
from notifier.service import (
    Service,
    catalogue_and_renderer,
    city_catalogue,
    open_database,
    open_existing_database,
    seed_catalogue,
)
from notifier.store import Store

# What the commands say, in one place.
SERVE_FAILED = "cannot serve on {host}:{port}: {error}"
NEEDS_ROLE = "keys create needs --role admin|publisher|viewer"
NEEDS_TARGET = "keys revoke needs the key or its id"
NO_SUCH_KEY = "no such key"
NO_DATABASE = "there is no database at {path} yet (is --config right? `notifier db upgrade` creates one)"
NO_KEYS = "no keys: " + NO_DATABASE
KEY_CREATED = "created {role} key {id}{scope}; it is shown only now:"
KEY_REVOKED = "revoked {id}"
MIGRATED = "applied migrations: {versions}"
UP_TO_DATE = "database is up to date"
TEMPLATE_ERROR = "ERROR {where}: {error}"
TEMPLATE_OK = "ok    {where} ({template}){size}"
TEMPLATES_CHECKED = "{n} templates checked, {failed} with errors"
NO_FILE = "no such file: {path}"
ASSISTED_OPTIONS = "import --assisted takes a CSV list (columns proxy, label, region, groups); --pending and " \
                   "--format ndjson do not apply"
ASSISTED_TOO_LARGE = "{path} is larger than {limit} bytes: split the list by sub-district"


class CommandError(Exception):
    """A command could not do what was asked; the message says why (exit code 2)."""


def settings_from(path: Path | None) -> Settings:
    return load_settings(path, os.environ)


def describe_error(exc: NotifierError) -> str:
    """A refusal in one line: what, then every field and why."""
    details = "; ".join(f"{e.field}: {e.message}" if e.field else e.message for e in exc.errors)
    return f"{exc.detail}: {details}" if details else exc.detail


def no_database(settings: Settings) -> str:
    return NO_DATABASE.format(path=settings.sqlite_path())


async def cmd_serve(settings: Settings, args: argparse.Namespace) -> int:
    from notifier.web.app import run_server

    setup_logging()
    # The service opens before the port does: a wrong channel section or an unreachable database ends the command
    # here, in one line, rather than inside the web server's start-up.
    async with Service(settings) as service:
        service.start_worker()
        server = asyncio.create_task(run_server(settings, service=service))
        # SIGTERM (systemd, docker stop) and Ctrl+C stop gracefully: the batches in flight are finished and
        # recorded before the process exits, rather than left to lease expiry and resent.
        stopped = asyncio.create_task(wait_for_signal())
        await asyncio.wait([server, stopped], return_when=asyncio.FIRST_COMPLETED)
        stopped.cancel()
        if server.done() and server.exception() is not None:
            raise CommandError(SERVE_FAILED.format(host=settings.server.host, port=settings.server.port,
                                                   error=server.exception()))
        server.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await server
    return 0


async def cmd_worker(settings: Settings, args: argparse.Namespace) -> int:
    from notifier.worker import run_worker

    setup_logging()
    return await run_worker(settings)


async def cmd_demo(settings: Settings, args: argparse.Namespace) -> int:
    from notifier.demo import run_demo

    setup_logging(level=logging.ERROR)  # the demo's scripted provider refusals are expected, not news
    return await run_demo(settings, once=args.once, subscribers=args.subscribers,
                          explicit_config=args.config is not None or "NOTIFIER_DATABASE__URL" in os.environ)


async def cmd_db(settings: Settings, args: argparse.Namespace) -> int:
    store = await open_database(settings, upgrade=False)
    try:
        applied = await store.upgrade()
    finally:
        await store.close()
    print(MIGRATED.format(versions=", ".join(map(str, applied))) if applied else UP_TO_DATE)
    return 0


async def cmd_keys(settings: Settings, args: argparse.Namespace) -> int:
    if args.action == "create":
        return await _create_key(settings, args)
    store = await open_existing_database(settings)  # listing or revoking never creates a database
    if store is None:
        if args.action == "list":
            print(NO_KEYS.format(path=settings.sqlite_path()), file=sys.stderr)
            return 0
        raise CommandError(f"{NO_SUCH_KEY}: {no_database(settings)}")
    try:
        return await (_revoke_key(store, args) if args.action == "revoke" else _list_keys(store))
    finally:
        await store.close()


async def _create_key(settings: Settings, args: argparse.Namespace) -> int:
    if not args.role:
        raise CommandError(NEEDS_ROLE)
    catalogue = city_catalogue(settings)
    store = await open_database(settings)
    try:  # a publisher's --topics are checked against the catalogue (notifier.keys): it must be in the database
        await seed_catalogue(store, catalogue)
        record, raw = await create_key(store, Role(args.role), args.topics, args.label)
    finally:
        await store.close()
    scope = f" topics={','.join(record.topics)}" if record.topics else ""
    print(KEY_CREATED.format(role=record.role, id=record.id, scope=scope), file=sys.stderr)
    print(raw)
    return 0


async def _revoke_key(store: Store, args: argparse.Namespace) -> int:
    if not args.target:
        raise CommandError(NEEDS_TARGET)
    revoked = await revoke_key(store, args.target)
    if revoked is None:
        raise CommandError(NO_SUCH_KEY)
    print(KEY_REVOKED.format(id=revoked.id))
    return 0


async def _list_keys(store: Store) -> int:
    for k in await store.list_keys():
        state = "revoked" if k.revoked_at else "active"
        print(f"{k.id}  {k.prefix}…  {k.role:<9}  {state:<7}  {','.join(k.topics) or '-'}  {k.label or ''}")
    return 0


async def cmd_templates(settings: Settings, args: argparse.Namespace) -> int:
    """Render every template; needs no database (and creates none)."""
    catalogue, renderer = catalogue_and_renderer(settings)
    signature = settings.channels.get("sms", {}).get("sign_name")
    reports = check_templates(renderer, catalogue, sms_signature=signature)
    failed = 0
    for report in reports:
        if not report.ok:
            failed += 1
        print(_describe(report))
    print(TEMPLATES_CHECKED.format(n=len(reports), failed=failed))
    return 1 if failed else 0


def _describe(report: TemplateReport) -> str:
    where = f"{report.topic} {report.channel} {report.locale}"
    if report.error:
        return TEMPLATE_ERROR.format(where=where, error=report.error)
    size = ""
    if report.segments is not None:
        size = f" — {report.chars} characters, {report.segments} SMS"
    elif report.chars is not None:
        size = f" — {report.chars} characters spoken"
    return TEMPLATE_OK.format(where=where, template=report.template, size=size)


async def cmd_import(settings: Settings, args: argparse.Namespace) -> int:
    """Exit 0 when the rows were stored (with --accept-valid: the valid ones), 1 when rows were rejected and so
    nothing was stored, 2 when the file itself cannot be imported."""
    from notifier.import_progress import import_display, print_import_summary, write_report
    from notifier.importing import ImportOptions, Outcome, import_file
    from notifier.progress import console
    from notifier.service import webhook_allows_private
    from subscriptions.models import SubscriberStatus

    if not args.file.is_file():
        raise CommandError(NO_FILE.format(path=args.file))
    if args.assisted:
        return await _import_assisted(settings, args)
    async with Service(settings.model_copy(update={"worker": settings.worker.model_copy(
            update={"enabled": False})})) as service:
        options = ImportOptions(label=args.label or args.file.name, partial=args.accept_valid,
                                status=SubscriberStatus.PENDING if args.pending else SubscriberStatus.ACTIVE,
                                allow_private_webhooks=webhook_allows_private(settings))
        with import_display(console) as progress:
            report = await import_file(service.store, args.file, args.format, options, progress)
    if args.report:
        write_report(args.report, report)
    print_import_summary(console, report, secrets_in_file=args.report is not None)
    return 1 if report.outcome is Outcome.REJECTED else 0


async def _import_assisted(settings: Settings, args: argparse.Namespace) -> int:
    """`import --assisted`: a sub-district office's list of assisted people (CSV), all or nothing."""
    from notifier.assisted_import import MAX_BYTES, import_assisted
    from notifier.import_progress import print_import_summary, write_report
    from notifier.importing import Outcome
    from notifier.progress import console

    if args.format == "ndjson" or args.pending:
        raise CommandError(ASSISTED_OPTIONS)
    if args.file.stat().st_size > MAX_BYTES:
        raise CommandError(ASSISTED_TOO_LARGE.format(path=args.file, limit=MAX_BYTES))
    async with Service(settings.model_copy(update={"worker": settings.worker.model_copy(
            update={"enabled": False})})) as service:
        report = await import_assisted(service.store, args.file.read_bytes(), label=args.label or args.file.name,
                                       partial=args.accept_valid)
    if args.report:
        write_report(args.report, report)
    print_import_summary(console, report, secrets_in_file=args.report is not None)
    return 1 if report.outcome is Outcome.REJECTED else 0


async def wait_for_signal() -> None:
    """Until SIGINT or SIGTERM."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
