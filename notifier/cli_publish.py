"""`notifier publish FILE [--wait]` and `notifier coverage ALERT_ID`: an alert from a file (the body of
`POST /v1/alerts`, read by the same input rules: JSON, or a CAP 1.2 document), its coverage, and why its
deliveries failed, in words.

`publish --wait` exits 1 when the alert targeted people but nothing could even be attempted (no configured
channel, no usable contact): the causes say what to fix. An alert that targets nobody is published, with a warning.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from notifier.causes import alert_causes
from notifier.commands import NO_ALERT_NO_DATABASE, NO_FILE, CommandError, no_database
from notifier.config import Settings
from notifier.coverage import alert_coverage
from notifier.database import open_existing_database
from notifier.i18n import N_, Words
from notifier.input_rules import read_text
from notifier.interchange import read_cap
from notifier.models import Coverage
from notifier.progress import print_coverage, watch_alert
from notifier.publish import check_alert, publish_alert
from notifier.states import AlertStatus

STDIN = "-"
RECEIPT_WAIT_MAX = 30.0  # seconds `--wait` gives receipts (SMS, WeChat) once nothing is pending
# What the commands say: msgids of the one catalogue (notifier.i18n), said in the command line's language.
STDIN_NAME = N_("stdin")
UNREADABLE = N_("%(path)s: %(reason)s")
NOT_JSON = N_("%(what)s is not valid JSON: %(reason)s (line %(line)s, column %(column)s)")
NOT_AN_OBJECT = N_("%(what)s must hold one JSON object: an alert as POST /v1/alerts takes it")
TARGETS_NOBODY = N_("warning: alert %(id)s targets nobody: no active subscriber of %(topic)s in its regions and "
                    "groups (it is stored, and listed publicly unless public is false)")
NOTHING_ATTEMPTED = N_("nothing could be attempted for alert %(id)s: %(causes)s")
CAUSE_OF_CHANNEL = N_("%(channel)s: %(cause)s (%(count)s)")
NO_ALERT = N_("no alert %(id)s")
WAITS_FOR_APPROVAL = N_("alert %(id)s waits for approval ([approval] holds it): nothing is sent until another key "
                        "of its department, or an admin, approves it (POST /v1/alerts/%(id)s/approve or the "
                        "dashboard); it would reach %(targeted)s subscribers now")


def read_file(path: str) -> bytes:
    """A file's bytes (or stdin's)."""
    if path == STDIN:
        return sys.stdin.buffer.read()
    file = Path(path)
    if not file.is_file():
        raise CommandError(NO_FILE, path=path)
    try:
        return file.read_bytes()
    except OSError as exc:
        raise CommandError(UNREADABLE, path=path, reason=exc.strerror or str(exc)) from None


def is_xml(raw: bytes) -> bool:
    """A CAP document rather than JSON: the first thing in it (after a BOM and blanks) is markup."""
    return raw.removeprefix(b"\xef\xbb\xbf").lstrip().startswith(b"<")


def read_body(path: str, words: Words, raw: bytes | None = None) -> Any:
    """The JSON in a file (or stdin): UTF-8 with or without BOM, or GBK, like every other input."""
    what = words(STDIN_NAME) if path == STDIN else path
    text = read_text(read_file(path) if raw is None else raw, what)
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        # json's own reason ("Expecting value") is English: it is quoted, with the place it names.
        raise CommandError(NOT_JSON, what=what, reason=exc.msg, line=exc.lineno, column=exc.colno) from None


def nothing_attempted(coverage: Coverage) -> bool:
    """People were targeted, nothing is left to do, and not one delivery was even tried."""
    channels = coverage.by_channel.values()
    return (bool(coverage.targeted) and not any(c.attempted for c in channels)
            and not any(c.pending for c in channels))


async def cmd_publish(settings: Settings, args: argparse.Namespace, words: Words) -> int:
    raw = read_file(args.file)
    data = None if is_xml(raw) else read_body(args.file, words, raw)  # XML: a CAP 1.2 document
    if data is not None and not isinstance(data, dict):
        raise CommandError(NOT_AN_OBJECT, what=args.file)
    from notifier.service import Service  # here, not at start-up: `coverage` shares this module and sends nothing

    async with Service(settings) as service:
        cap = await read_cap(service.store, raw) if data is None else None
        body = cap.alert if cap is not None else await check_alert(service.store, data)
        alert, created = await publish_alert(service.store, body, None, cap=cap, approval=settings.approval)
        print(json.dumps({"id": alert.id, "targeted": alert.targeted, "status": alert.status,
                          "created": created}, ensure_ascii=False))
        if alert.status == AlertStatus.PENDING_APPROVAL:
            print(words(WAITS_FOR_APPROVAL, id=alert.id, targeted=alert.targeted), file=sys.stderr)
            return 0
        if alert.targeted == 0:
            print(words(TARGETS_NOBODY, id=alert.id, topic=alert.topic), file=sys.stderr)
        if not args.wait:
            return 0
        # Receipts (SMS, WeChat) may still arrive at the server: give them a moment before the table.
        await watch_alert(service, alert.id, words,
                          receipt_wait=min(float(alert.fallback_after), RECEIPT_WAIT_MAX))
        coverage = await alert_coverage(service.store, alert.id)
        causes = await alert_causes(service.store, alert.id)
        names = {r.code: (r.name_en or r.name) if words.lang == "en" else r.name for r in service.catalogue.regions}
        print_coverage(coverage, words, names, causes)
    if nothing_attempted(coverage):
        said = [words(CAUSE_OF_CHANNEL, channel=c.channel, cause=words.beside(c.cause.said, sep=" / "),
                      count=c.count) for c in causes]
        print(words(NOTHING_ATTEMPTED, id=alert.id, causes="; ".join(said)), file=sys.stderr)
        return 1
    return 0


async def cmd_coverage(settings: Settings, args: argparse.Namespace, words: Words) -> int:
    store = await open_existing_database(settings)  # a read: never creates a database
    if store is None:
        raise CommandError(NO_ALERT_NO_DATABASE, id=args.alert_id, why=no_database(settings))
    try:
        if await store.get_alert(args.alert_id) is None:
            raise CommandError(NO_ALERT, id=args.alert_id)
        coverage = await alert_coverage(store, args.alert_id)
        causes = await alert_causes(store, args.alert_id)
        names = {r["code"]: (r["name_en"] or r["name"]) if words.lang == "en" else r["name"]
                 for r in await store.list_regions()}
    finally:
        await store.close()
    if args.json:
        print(coverage.model_dump_json(indent=2))
    else:
        print_coverage(coverage, words, names, causes)
    return 0
