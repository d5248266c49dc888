"""What each `notifier` sub-command does, as library functions the CLI calls (and tests can call directly)."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
import os
import signal
import sys
from pathlib import Path

from pydantic import ValidationError

from notifier.config import Settings, load_settings
from notifier.coverage import alert_coverage
from notifier.errors import NotifierError
from notifier.keys import create_key, revoke_key
from notifier.logs import setup_logging
from notifier.models import AlertIn, Role
from notifier.progress import print_coverage, watch_alert
from notifier.publish import publish_alert
from notifier.rendering import TemplateReport, check_templates
from notifier.service import Service
from notifier.store import open_store


class CommandError(Exception):
    """A command could not do what was asked; the message says why (exit code 2)."""


def settings_from(path: Path | None) -> Settings:
    return load_settings(path, os.environ)


async def cmd_serve(settings: Settings, args: argparse.Namespace) -> int:
    from notifier.web.app import run_server

    setup_logging()
    server = asyncio.create_task(run_server(settings))
    # SIGTERM (systemd, docker stop) and Ctrl+C stop gracefully: the batches in flight are finished and recorded
    # before the process exits, rather than left to lease expiry and resent.
    stopped = asyncio.create_task(wait_for_signal())
    await asyncio.wait([server, stopped], return_when=asyncio.FIRST_COMPLETED)
    stopped.cancel()
    if server.done() and server.exception() is not None:
        raise CommandError(f"cannot serve on {settings.server.host}:{settings.server.port}: {server.exception()}")
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
    store = await open_store(settings, upgrade=False)
    try:
        applied = await store.upgrade()
    finally:
        await store.close()
    print(f"applied migrations: {', '.join(map(str, applied))}" if applied else "database is up to date")
    return 0


async def cmd_keys(settings: Settings, args: argparse.Namespace) -> int:
    store = await open_store(settings)
    try:
        if args.action == "create":
            if not args.role:
                raise CommandError("keys create needs --role admin|publisher|viewer")
            record, raw = await create_key(store, Role(args.role), args.topics, args.label)
            scope = f" topics={','.join(record.topics)}" if record.topics else ""
            print(f"created {record.role} key {record.id}{scope}; it is shown only now:", file=sys.stderr)
            print(raw)
        elif args.action == "revoke":
            if not args.target:
                raise CommandError("keys revoke needs the key or its id")
            revoked = await revoke_key(store, args.target)
            if revoked is None:
                raise CommandError("no such key")
            print(f"revoked {revoked.id}")
        else:
            for k in await store.list_keys():
                state = "revoked" if k.revoked_at else "active"
                print(f"{k.id}  {k.prefix}…  {k.role:<9}  {state:<7}  {','.join(k.topics) or '-'}  {k.label or ''}")
    finally:
        await store.close()
    return 0


async def cmd_templates(settings: Settings, args: argparse.Namespace) -> int:
    async with Service(settings.model_copy(update={"worker": settings.worker.model_copy(
            update={"enabled": False})})) as service:
        signature = service.settings.channels.get("sms", {}).get("sign_name")
        reports = check_templates(service.renderer, service.catalogue, sms_signature=signature)
    failed = 0
    for report in reports:
        if not report.ok:
            failed += 1
        print(_describe(report))
    print(f"{len(reports)} templates checked, {failed} with errors")
    return 1 if failed else 0


def _describe(report: TemplateReport) -> str:
    where = f"{report.topic} {report.channel} {report.locale}"
    if report.error:
        return f"ERROR {where}: {report.error}"
    size = ""
    if report.segments is not None:
        size = f" — {report.chars} characters, {report.segments} SMS"
    elif report.chars is not None:
        size = f" — {report.chars} characters spoken"
    return f"ok    {where} ({report.template}){size}"


def _read_alert(path: str) -> AlertIn:
    text = sys.stdin.read() if path == "-" else Path(path).read_text(encoding="utf-8")
    try:
        return AlertIn.model_validate_json(text)
    except ValidationError as exc:
        raise CommandError(f"the alert is not valid:\n{exc}") from None


async def cmd_publish(settings: Settings, args: argparse.Namespace) -> int:
    alert_in = _read_alert(args.file)
    async with Service(settings) as service:
        try:
            alert, created = await publish_alert(service.store, alert_in, None)
        except NotifierError as exc:
            details = "; ".join(f"{e.field}: {e.message}" for e in exc.errors)
            raise CommandError(f"{exc.detail}{': ' + details if details else ''}") from None
        print(json.dumps({"id": alert.id, "targeted": alert.targeted, "status": alert.status,
                          "created": created}, ensure_ascii=False))
        if args.wait:
            # Receipts (SMS, WeChat) may still arrive at the server: give them a moment before the table.
            await watch_alert(service, alert.id, receipt_wait=min(float(alert.fallback_after), 30.0))
            print_coverage(await alert_coverage(service.store, alert.id))
    return 0


async def cmd_coverage(settings: Settings, args: argparse.Namespace) -> int:
    store = await open_store(settings)
    try:
        if await store.get_alert(args.alert_id) is None:
            raise CommandError(f"no alert {args.alert_id}")
        coverage = await alert_coverage(store, args.alert_id)
    finally:
        await store.close()
    if args.json:
        print(coverage.model_dump_json(indent=2))
    else:
        print_coverage(coverage)
    return 0


async def cmd_import(settings: Settings, args: argparse.Namespace) -> int:
    """Exit 0 when the rows were stored (with --accept-valid: the valid ones), 1 when rows were rejected and so
    nothing was stored, 2 when the file itself cannot be imported."""
    from notifier.import_progress import import_display, print_import_summary, write_report
    from notifier.importing import ImportOptions, Outcome, import_file
    from notifier.progress import console
    from notifier.service import webhook_allows_private
    from subscriptions.models import SubscriberStatus

    if not args.file.is_file():
        raise CommandError(f"no such file: {args.file}")
    options = ImportOptions(label=args.label or args.file.name, partial=args.accept_valid,
                            status=SubscriberStatus.PENDING if args.pending else SubscriberStatus.ACTIVE,
                            allow_private_webhooks=webhook_allows_private(settings))
    async with Service(settings.model_copy(update={"worker": settings.worker.model_copy(
            update={"enabled": False})})) as service:
        try:
            with import_display(console) as progress:
                report = await import_file(service.store, args.file, args.format, options, progress)
        except NotifierError as exc:
            details = "; ".join(f"{e.field}: {e.message}" for e in exc.errors)
            raise CommandError(f"{exc.detail}{': ' + details if details else ''}") from None
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
