"""What each `notifier` sub-command does, as library functions the CLI calls (and tests can call directly).
`publish` and `coverage` live in `notifier.cli_publish`."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from notifier.audit import ChainOK, ChainVerifier
from notifier.config import Settings, load_settings
from notifier.database import city_catalogue, open_database, open_existing_database, seed_catalogue
from notifier.errors import NotifierError
from notifier.i18n import N_, NP_, Said, Words, translator
from notifier.keys import create_key, revoke_key
from notifier.logs import setup_logging
from notifier.models import Role
from notifier.settle import settle_long_running
from notifier.stopping import stop_event, wait_for_signal
from notifier.store import Store
from notifier.terms import Terms, term

if TYPE_CHECKING:
    from notifier.rendering import TemplateReport

# The service (channels, templates, the HTTP client) is imported by the commands that run it, not at start-up
# (notifier.cli's HANDLERS says why).

# What the commands say: msgids of the one catalogue (notifier.i18n), said in the command line's language.
SERVE_FAILED = N_("cannot serve on %(host)s:%(port)s: %(error)s")
NEEDS_ROLE = N_("keys create needs --role admin|publisher|viewer")
NEEDS_TARGET = N_("keys revoke needs the key or its id")
NO_SUCH_KEY = N_("no such key")
NO_SUCH_KEY_NO_DATABASE = N_("no such key: %(why)s")
NO_DATABASE = N_("there is no database at %(path)s yet (is --config right? `notifier db upgrade` creates one)")
NO_KEYS = N_("no keys: %(why)s")
NO_AUDIT = N_("nothing to verify: %(why)s")
KEY_CREATED = N_("created %(role)s key %(id)s%(scope)s; it is shown only now:")
KEY_SCOPE = N_(" for the topics %(topics)s")
KEY_DEPARTMENT = N_(" of %(department)s")
KEY_STATE = {False: NP_("key state", "active"), True: NP_("key state", "revoked")}
KEY_REVOKED = N_("revoked %(id)s")
MIGRATED = N_("applied migrations: %(versions)s")
UP_TO_DATE = N_("the database is up to date")
TEMPLATE_ERROR = N_("ERROR %(where)s: %(error)s")
TEMPLATE_OK = N_("ok    %(where)s (%(template)s)%(size)s")
SMS_SIZE = N_(" — %(chars)s characters, %(segments)s SMS")
SPOKEN_SIZE = N_(" — %(chars)s characters spoken")
TEMPLATES_CHECKED = N_("%(n)s templates checked, %(failed)s with errors")
NO_FILE = N_("no such file: %(path)s")
NO_ALERT_NO_DATABASE = N_("no alert %(id)s: %(why)s")
FIELD_PROBLEMS = N_("%(detail)s: %(fields)s")
WORKER_READY = "WORKER READY"  # a line for scripts, never translated
ASSISTED_OPTIONS = N_("import --assisted takes a CSV list (columns proxy, label, region, groups); --pending and "
                      "--format ndjson do not apply")
ASSISTED_TOO_LARGE = N_("%(path)s is larger than %(limit)s bytes: split the list by sub-district")


class CommandError(Exception):
    """A command could not do what was asked; `said` says why in the reader's language (exit code 2)."""

    def __init__(self, message: str, /, **values: object) -> None:
        self.said = Said(message, values)
        super().__init__(str(self.said))


def settings_from(path: Path | None) -> Settings:
    return load_settings(path, os.environ)


def describe_error(exc: NotifierError, words: Words) -> str:
    """A refusal of the core in one line: what (in the reader's language where the catalogue has the API's
    detail), then every field and why (as the API's problem document says them)."""
    detail = translator(words.lang).gettext(exc.detail)
    details = "; ".join(f"{e.field}: {e.message}" if e.field else e.message for e in exc.errors)
    return words(FIELD_PROBLEMS, detail=detail, fields=details) if details else detail


def no_database(settings: Settings) -> Said:
    return Said(NO_DATABASE, {"path": settings.sqlite_path()})


async def cmd_serve(settings: Settings, args: argparse.Namespace, words: Words) -> int:
    from notifier.service import Service
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
            raise CommandError(SERVE_FAILED, host=settings.server.host, port=settings.server.port,
                               error=server.exception())
        server.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await server
    return 0


async def cmd_worker(settings: Settings, args: argparse.Namespace, words: Words) -> int:
    """Deliver until SIGTERM/SIGINT, whatever `[worker] enabled` says (delivering is this process's job). Prints
    WORKER_READY once it is working (scripts and tests wait for that line)."""
    from notifier.service import Service

    setup_logging()
    settings = settings.model_copy(update={"worker": settings.worker.model_copy(update={"enabled": True})})
    stop = stop_event()  # handlers first: a signal sent as soon as READY is seen must stop us gracefully
    async with Service(settings) as service:
        service.start_worker()
        settle_long_running()
        print(WORKER_READY, flush=True)
        await stop.wait()
        await service.stop_worker()
    return 0


async def cmd_demo(settings: Settings, args: argparse.Namespace, words: Words) -> int:
    from notifier.demo import run_demo

    setup_logging(level=logging.ERROR)  # the demo's scripted provider refusals are expected, not news
    return await run_demo(settings, words, once=args.once, subscribers=args.subscribers,
                          explicit_config=args.config is not None or "NOTIFIER_DATABASE__URL" in os.environ)


async def cmd_db(settings: Settings, args: argparse.Namespace, words: Words) -> int:
    store = await open_database(settings, upgrade=False)
    try:
        applied = await store.upgrade()
    finally:
        await store.close()
    print(words(MIGRATED, versions=", ".join(map(str, applied))) if applied else words(UP_TO_DATE))
    return 0


async def cmd_keys(settings: Settings, args: argparse.Namespace, words: Words) -> int:
    if args.action == "create":
        return await _create_key(settings, args, words)
    store = await open_existing_database(settings)  # listing or revoking never creates a database
    if store is None:
        if args.action == "list":
            print(words(NO_KEYS, why=no_database(settings)), file=sys.stderr)
            return 0
        raise CommandError(NO_SUCH_KEY_NO_DATABASE, why=no_database(settings))
    try:
        return await (_revoke_key(store, args, words) if args.action == "revoke" else _list_keys(store, words))
    finally:
        await store.close()


async def _create_key(settings: Settings, args: argparse.Namespace, words: Words) -> int:
    if not args.role:
        raise CommandError(NEEDS_ROLE)
    catalogue = city_catalogue(settings)
    store = await open_database(settings)
    try:  # a publisher's --topics are checked against the catalogue (notifier.keys): it must be in the database
        await seed_catalogue(store, catalogue)
        record, raw = await create_key(store, Role(args.role), args.topics, args.label, args.department)
    finally:
        await store.close()
    scope = words(KEY_SCOPE, topics=",".join(record.topics)) if record.topics else ""
    scope += words(KEY_DEPARTMENT, department=record.department) if record.department else ""
    print(words(KEY_CREATED, role=term("role", record.role, words.lang), id=record.id, scope=scope),
          file=sys.stderr)
    print(raw)
    return 0


async def _revoke_key(store: Store, args: argparse.Namespace, words: Words) -> int:
    if not args.target:
        raise CommandError(NEEDS_TARGET)
    revoked = await revoke_key(store, args.target)
    if revoked is None:
        raise CommandError(NO_SUCH_KEY)
    print(words(KEY_REVOKED, id=revoked.id))
    return 0


async def _list_keys(store: Store, words: Words) -> int:
    terms = Terms(words.lang)
    for k in await store.list_keys():
        state = words(KEY_STATE[k.revoked_at is not None])
        print(f"{k.id}  {k.prefix}…  {terms('role', k.role)}  {state}  {','.join(k.topics) or '-'}  "
              f"{k.department or '-'}  {k.label or ''}")
    return 0


async def cmd_templates(settings: Settings, args: argparse.Namespace, words: Words) -> int:
    """Render every template; needs no database (and creates none)."""
    from notifier.rendering import check_templates
    from notifier.service import catalogue_and_renderer

    catalogue, renderer = catalogue_and_renderer(settings)
    signature = settings.channels.get("sms", {}).get("sign_name")
    reports = check_templates(renderer, catalogue, sms_signature=signature)
    failed = 0
    for report in reports:
        if not report.ok:
            failed += 1
        print(_describe(report, words))
    print(words(TEMPLATES_CHECKED, n=len(reports), failed=failed))
    return 1 if failed else 0


def _describe(report: TemplateReport, words: Words) -> str:
    where = f"{report.topic} {report.channel} {report.locale}"
    if report.error:
        return words(TEMPLATE_ERROR, where=where, error=report.error)
    size = ""
    if report.segments is not None:
        size = words(SMS_SIZE, chars=report.chars, segments=report.segments)
    elif report.chars is not None:
        size = words(SPOKEN_SIZE, chars=report.chars)
    return words(TEMPLATE_OK, where=where, template=report.template, size=size)


async def cmd_import(settings: Settings, args: argparse.Namespace, words: Words) -> int:
    """Exit 0 when the rows were stored (with --accept-valid: the valid ones), 1 when rows were rejected and so
    nothing was stored, 2 when the file itself cannot be imported."""
    from notifier.import_progress import import_display, print_import_summary, write_report
    from notifier.importing import ImportOptions, ImportOutcome, import_file
    from notifier.progress import console
    from notifier.service import Service, webhook_allows_private
    from subscriptions.models import SubscriberStatus

    if not args.file.is_file():
        raise CommandError(NO_FILE, path=args.file)
    if args.assisted:
        return await _import_assisted(settings, args, words)
    async with Service(settings.model_copy(update={"worker": settings.worker.model_copy(
            update={"enabled": False})})) as service:
        options = ImportOptions(label=args.label or args.file.name, partial=args.accept_valid,
                                status=SubscriberStatus.PENDING if args.pending else SubscriberStatus.ACTIVE,
                                allow_private_webhooks=webhook_allows_private(settings))
        with import_display(console, words) as progress:
            report = await import_file(service.store, args.file, args.format, options, progress)
    if args.report:
        write_report(args.report, report)
    print_import_summary(console, words, report, secrets_in_file=args.report is not None)
    return 1 if report.outcome is ImportOutcome.REJECTED else 0



async def cmd_audit(settings: Settings, args: argparse.Namespace, words: Words) -> int:
    """`audit verify [--witness SEQ:HASH]`: read the chain in seq order (a chunk at a time) and check it, against
    a head witnessed outside before if given; exit 0 when intact, 1 with the first broken seq. Never creates a
    database. Its verdict line is SPEC's, for scripts: never translated."""
    store = await open_existing_database(settings)
    if store is None:
        raise CommandError(NO_AUDIT, why=no_database(settings))
    try:
        verifier = ChainVerifier(args.witness)
        async for entry in store.audit_stream():
            verifier.add(entry)
        result = verifier.result()
    finally:
        await store.close()
    print(result.line())
    return 0 if isinstance(result, ChainOK) else 1


async def _import_assisted(settings: Settings, args: argparse.Namespace, words: Words) -> int:
    """`import --assisted`: a sub-district office's list of assisted people (CSV), all or nothing."""
    from notifier.assisted_import import MAX_BYTES, import_assisted
    from notifier.import_progress import print_import_summary, write_report
    from notifier.importing import ImportOutcome
    from notifier.progress import console
    from notifier.service import Service

    if args.format == "ndjson" or args.pending:
        raise CommandError(ASSISTED_OPTIONS)
    if args.file.stat().st_size > MAX_BYTES:
        raise CommandError(ASSISTED_TOO_LARGE, path=args.file, limit=MAX_BYTES)
    async with Service(settings.model_copy(update={"worker": settings.worker.model_copy(
            update={"enabled": False})})) as service:
        report = await import_assisted(service.store, args.file.read_bytes(), label=args.label or args.file.name,
                                       partial=args.accept_valid)
    if args.report:
        write_report(args.report, report)
    print_import_summary(console, words, report, secrets_in_file=args.report is not None)
    return 1 if report.outcome is ImportOutcome.REJECTED else 0
