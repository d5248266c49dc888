"""`notifier approvals list|approve|reject`: the two-person release from a terminal (SPEC "Departments and
approval"), for the duty officer who has the server but not the dashboard at hand.

The command line acts as an admin without a key (audit actor `cli`) through the same core as the API and the
dashboard (`notifier.approval`): the same 404/409 refusals, the same audit entries. It cannot decide on an alert
the command line itself published (the same actor: the second pair of eyes must be someone else's). Approving
queues the deliveries; the running `serve` or `worker` processes deliver them.
"""

from __future__ import annotations

import argparse
from datetime import UTC, datetime

from notifier.approval import approve_alert, reject_alert
from notifier.commands import NO_ALERT_NO_DATABASE, CommandError, no_database
from notifier.config import Settings
from notifier.database import open_existing_database
from notifier.i18n import N_, Words
from notifier.localtime import LOCAL_TZ
from notifier.store import Store
from notifier.store.records import AlertRow
from notifier.terms import Terms

NEEDS_ALERT = N_("approvals %(action)s needs the alert's id (approvals list shows them)")
NEEDS_REASON = N_("approvals reject needs --reason: why, kept in the alert and the audit log")
NOTHING_WAITS = N_("no alert waits for approval")
NOTHING_WAITS_NO_DATABASE = N_("no alert waits for approval: %(why)s")
WAITING_LINE = N_("%(id)s  published %(created)s  %(department)s  %(topic)s  %(severity)s%(level)s  regions: "
                  "%(regions)s  rejected as timed out at %(decide_by)s")
APPROVED = N_("approved %(id)s: %(targeted)s subscribers targeted; the running serve or worker processes deliver it")
REJECTED = N_("rejected %(id)s: nothing was or will be sent")
WAITING_SHOWN = 200


async def cmd_approvals(settings: Settings, args: argparse.Namespace, words: Words) -> int:
    store = await open_existing_database(settings)  # deciding on or listing alerts never creates a database
    if store is None:
        if args.action == "list":
            print(words(NOTHING_WAITS_NO_DATABASE, why=no_database(settings)))
            return 0
        raise CommandError(NO_ALERT_NO_DATABASE, id=args.alert_id, why=no_database(settings))
    try:
        if args.action == "list":
            return await _list(store, settings.approval.timeout, words)
        if not args.alert_id:
            raise CommandError(NEEDS_ALERT, action=args.action)
        if args.action == "approve":
            approved = await approve_alert(store, args.alert_id, None)
            print(words(APPROVED, id=approved.id, targeted=approved.targeted))
        else:
            if not args.reason:
                raise CommandError(NEEDS_REASON)
            rejected = await reject_alert(store, args.alert_id, None, args.reason)
            print(words(REJECTED, id=rejected.id))
        return 0
    finally:
        await store.close()


async def _list(store: Store, timeout: float, words: Words) -> int:
    """Oldest first: the one closest to its timeout leads."""
    waiting = await store.pending_alerts(None, WAITING_SHOWN)
    if not waiting:
        print(words(NOTHING_WAITS))
    for alert in waiting:
        print(_line(alert, timeout, words))
    return 0


def _line(alert: AlertRow, timeout: float, words: Words) -> str:
    terms = Terms(words.lang)

    def when(at: float) -> str:
        return terms.when(datetime.fromtimestamp(at, UTC), LOCAL_TZ)

    level = f" {terms('level', alert.level)}" if alert.level else ""
    return words(WAITING_LINE, id=alert.id, created=when(alert.created_at), department=alert.department or "-",
                 topic=alert.topic, severity=terms("severity", alert.severity), level=level,
                 regions=terms.places(alert.target_regions), decide_by=when(alert.created_at + timeout))
