"""Catalogue deadlines at work (SPEC "Catalogue deadlines"; docs/governance.md "Wiring the deadlines"): per
scheduled topic and period, whether its disclosure came on time — for `GET /v1/catalogue/compliance` and the
dashboard — and the notice that tells a department, once, that one is overdue.

The rules of periods, due moments and statuses are `notifier.schedule`'s; what counts as a disclosure is the
store's (`store/deadlines.py`). Compliance is owed from the period in which a topic's schedule was set
(`schedule_set_at`), or from its `since`.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from channels.base import Channel, Message, Outcome, Recipient
from notifier.catalogue import Catalogue
from notifier.config import DepartmentContacts
from notifier.i18n import N_, translator
from notifier.localtime import LOCAL_TZ
from notifier.schedule import (
    ComplianceItem,
    ComplianceStatus,
    compliance,
    from_stored,
    periods_of_month,
    search_window,
)
from notifier.store import Store
from notifier.terms import Terms

log = logging.getLogger("notifier.compliance")

NOTICE_EVERY = 60.0  # seconds between two looks for newly overdue disclosures (each worker)
CLAIM_SECONDS = 300.0  # a worker that claimed a notice and died lets it go after this
RETRY_SECONDS = 600.0  # a notice that could not be sent is tried again after this …
MAX_ATTEMPTS = 10  # … this many times in all
NOTICE_MSG_TYPE = "compliance"  # the webhook body's type is "alert.compliance"

SUBJECT = N_("Disclosure overdue: %(topic)s (%(period)s)")
TEXT = N_("%(department)s: the disclosure \"%(topic)s\" for %(period)s was due by %(due)s and has not been "
          "published. Please publish it, or record why it cannot be.")


def _at(moment: float) -> datetime:
    return datetime.fromtimestamp(moment, LOCAL_TZ)


async def month_compliance(store: Store, period: str, now: float) -> list[ComplianceItem]:
    """Every owed period of every scheduled topic in the month `period` (YYYY-MM; ScheduleError otherwise), by
    topic key, oldest period first."""
    items: list[ComplianceItem] = []
    for topic in await store.list_topics():
        schedule = from_stored(topic.get("schedule")).schedule
        if schedule is None:
            continue
        set_at = _at(topic.get("schedule_set_at") or 0.0)
        window = search_window(periods_of_month(schedule, period, set_at=set_at))
        if window is None:
            continue
        released = await store.release_times(topic["key"], window[0].timestamp(), window[1].timestamp(), now)
        items += compliance(topic["key"], topic["department"], schedule, period, set_at=set_at,
                            published=[_at(t) for t in released], now=_at(now))
    return items


def months_to_watch(now: float) -> list[str]:
    """The months whose disclosures may be newly overdue: this one, and the last (a deadline on a month's last
    day passes after it ends)."""
    today = _at(now).date()
    last_month = date.fromordinal(today.replace(day=1).toordinal() - 1)
    return [last_month.strftime("%Y-%m"), today.strftime("%Y-%m")]


WARN_NO_SUCH_DEPARTMENT = ("[departments.\"{name}\"]: no topic names this department, so it will never be told "
                           "of an overdue disclosure (departments are spelt as the topics spell them: {known})")
WARN_NO_EMAIL_CHANNEL = ("[departments.\"{name}\"] email: [channels.email] is not configured, so overdue notices "
                         "cannot be emailed")


def contact_warnings(departments: Mapping[str, DepartmentContacts], topics: Sequence[Mapping[str, Any]],
                     channels: Mapping[str, Channel]) -> list[str]:
    """What an operator is told at start-up about `[departments]` that cannot work as written."""
    known = sorted({str(t["department"]) for t in topics})
    warnings = [WARN_NO_SUCH_DEPARTMENT.format(name=name, known="、".join(known))
                for name in departments if name not in known]
    warnings += [WARN_NO_EMAIL_CHANNEL.format(name=name) for name, contacts in departments.items()
                 if contacts.email and "email" not in channels]
    return warnings


@dataclass
class OverdueNotices:
    """The worker's chore: tell each department, once, of its overdue disclosures (`[departments."<name>"]`),
    over the email and webhook channels. Run by the dispatcher every NOTICE_EVERY seconds."""

    store: Store
    departments: Mapping[str, DepartmentContacts]
    channels: Mapping[str, Channel]
    catalogue: Catalogue

    async def __call__(self, now: float) -> int:
        """Send the notices that are due; returns how many were sent now."""
        if not self.departments:
            return 0
        topics = {t["key"]: t for t in await self.store.list_topics()}
        sent = 0
        for month in months_to_watch(now):
            for item in await month_compliance(self.store, month, now):
                contacts = self.departments.get(item.department)
                if item.status is ComplianceStatus.OVERDUE and contacts is not None:
                    sent += await self._notify(item, contacts, topics.get(item.topic, {}), now)
        return sent

    async def _notify(self, item: ComplianceItem, contacts: DepartmentContacts, topic: Mapping[str, Any],
                      now: float) -> int:
        owner = uuid.uuid4().hex
        if not await self.store.claim_compliance_notice(item.topic, item.period, item.department,
                                                        item.due_at.timestamp(), owner, now, now + CLAIM_SECONDS,
                                                        MAX_ATTEMPTS):
            return 0
        error = await self._send(item, contacts, topic)
        await self.store.finish_compliance_notice(item.topic, item.period, owner, now, error, now + RETRY_SECONDS)
        if error is not None:
            log.warning("overdue notice for %s %s not sent: %s", item.topic, item.period, error)
        return int(error is None)

    async def _send(self, item: ComplianceItem, contacts: DepartmentContacts, topic: Mapping[str, Any]) -> str | None:
        """Send to every contact; the first error that is worth another try, else None (refusals are logged)."""
        message = notice_message(item, topic, self.catalogue)
        retry = None
        for kind, recipients in notice_recipients(item, contacts).items():
            channel = self.channels.get(kind)
            if channel is None:
                retry = retry or f"channel {kind} is not configured"
                continue
            try:
                results = await channel.send(message, recipients)
            except Exception as exc:  # an adapter bug must not stop the worker: try again later
                log.exception("overdue notice: channel %s raised", kind)
                retry = retry or f"{kind}: {type(exc).__name__}"
                continue
            for result in results:
                if result.outcome is Outcome.TRANSIENT:
                    retry = retry or f"{kind}: {result.error}"
                elif result.outcome is Outcome.PERMANENT:
                    log.error("overdue notice for %s %s refused by %s: %s", item.topic, item.period, kind,
                              result.error)
        return retry


def notice_recipients(item: ComplianceItem, contacts: DepartmentContacts) -> dict[str, list[Recipient]]:
    """The department's contacts by channel kind; each with a delivery id fixed for this notice (a resend carries
    the same webhook-id and Message-ID, so receivers can drop a repeat)."""
    def recipient(kind: str, index: int, address: str, secret: str | None = None) -> Recipient:
        delivery_id = uuid.uuid5(uuid.NAMESPACE_URL, f"notifier:overdue:{item.topic}:{item.period}:{kind}:{index}")
        return Recipient(delivery_id=delivery_id.hex, subscriber_id=f"department:{item.department}",
                         address=address, secret=secret)

    out: dict[str, list[Recipient]] = {}
    if contacts.email:
        out["email"] = [recipient("email", n, address) for n, address in enumerate(contacts.email)]
    if contacts.webhook is not None and contacts.webhook_secret is not None:
        out["webhook"] = [recipient("webhook", 0, contacts.webhook, contacts.webhook_secret.get_secret_value())]
    return out


def notice_words(item: ComplianceItem, topic: Mapping[str, Any], catalogue: Catalogue,
                 lang: str) -> tuple[str, str]:
    """(subject, text) of the notice in one language, with the official terms."""
    t, terms = translator(lang).gettext, Terms(lang)
    english = lang == "en"
    name = str((topic.get("name_en") if english else None) or topic.get("name") or item.topic)
    department = (catalogue.department_en(item.department) if english else None) or item.department
    words = {"topic": name, "period": item.period, "department": department,
             "due": terms.when(item.due_at, LOCAL_TZ)}
    return t(SUBJECT) % words, t(TEXT) % words


def notice_message(item: ComplianceItem, topic: Mapping[str, Any], catalogue: Catalogue,
                   languages: Sequence[str] = ("zh-CN", "en")) -> Message:
    """The notice as one message, Simplified Chinese first, English second."""
    said = [notice_words(item, topic, catalogue, lang) for lang in languages]
    payload = {"notice": "compliance_overdue", **item.as_json()}
    return Message(alert_id=f"overdue:{item.topic}:{item.period}", topic=item.topic, msg_type=NOTICE_MSG_TYPE,
                   severity="moderate", urgency="expected", level=None, locale=languages[0],
                   headline=said[0][0], subject=" / ".join(s for s, _ in said),
                   text="\n\n".join(text for _, text in said), payload=payload,
                   sent_at=item.due_at.timestamp())
