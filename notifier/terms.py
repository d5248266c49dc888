"""The official terms, said the same way everywhere: on the admin, public and citizen pages, in CSV exports and in
the messages themselves.

Each term is a code (`extreme`, `orange`, `sms`…) and a msgid with a context in the one catalogue
(`notifier.i18n`). The Chinese words are the official ones: warning levels 蓝色/黄色/橙色/红色预警 (blue IV, yellow
III, orange II, red I, from the meteorological warning signals), CAP severities as the Chinese four-grade scale
(extreme 特别严重, severe 严重, moderate 较重, minor 一般), CAP urgency and certainty in words a citizen reads at a
glance (expected is 尽快 "act soon", not the literal 预计).

`Terms(lang)` answers in one language; `term(kind, code, lang)` is the same for one look-up. A code without a term
(a channel kind from a plugin) shows as itself rather than breaking a page.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import UTC, datetime, tzinfo

from notifier.i18n import NP_, translator

Term = tuple[str, str]  # (msgctxt, msgid)

SEVERITY: Mapping[str, Term] = {
    "extreme": NP_("severity", "extreme"), "severe": NP_("severity", "severe"),
    "moderate": NP_("severity", "moderate"), "minor": NP_("severity", "minor"),
}
LEVEL: Mapping[str, Term] = {
    "blue": NP_("warning level", "Blue warning"), "yellow": NP_("warning level", "Yellow warning"),
    "orange": NP_("warning level", "Orange warning"), "red": NP_("warning level", "Red warning"),
}
LEVEL_COLOUR: Mapping[str, Term] = {
    "blue": NP_("warning colour", "Blue"), "yellow": NP_("warning colour", "Yellow"),
    "orange": NP_("warning colour", "Orange"), "red": NP_("warning colour", "Red"),
}
URGENCY: Mapping[str, Term] = {
    "immediate": NP_("urgency", "immediate"), "expected": NP_("urgency", "soon"),
    "future": NP_("urgency", "near future"), "past": NP_("urgency", "past"),
}
# CAP's certainty (the API does not take it yet; CAP documents from the provincial platform carry it).
CERTAINTY: Mapping[str, Term] = {
    "observed": NP_("certainty", "observed"), "likely": NP_("certainty", "likely"),
    "possible": NP_("certainty", "possible"), "unlikely": NP_("certainty", "unlikely"),
}
ALERT_STATUS: Mapping[str, Term] = {
    "scheduled": NP_("alert status", "scheduled"), "active": NP_("alert status", "in force"),
    "updated": NP_("alert status", "updated"), "cancelled": NP_("alert status", "cancelled"),
    "superseded": NP_("alert status", "superseded by an update"), "expired": NP_("alert status", "expired"),
    "pending_approval": NP_("alert status", "waiting for approval"), "rejected": NP_("alert status", "rejected"),
    "exercise": NP_("alert status", "exercise (not sent)"),
}
DELIVERY_STATUS: Mapping[str, Term] = {
    "queued": NP_("delivery status", "queued"), "sending": NP_("delivery status", "sending"),
    "sent": NP_("delivery status", "accepted"), "delivered": NP_("delivery status", "delivered"),
    "failed": NP_("delivery status", "failed"), "expired": NP_("delivery status", "expired"),
    "cancelled": NP_("delivery status", "cancelled"), "deferred": NP_("delivery status", "deferred (quiet hours)"),
    "skipped": NP_("delivery status", "not needed"),
}
CHANNEL: Mapping[str, Term] = {
    "sms": NP_("channel", "SMS"), "wechat": NP_("channel", "WeChat"), "email": NP_("channel", "Email"),
    "webhook": NP_("channel", "Webhook"), "voice": NP_("channel", "Voice call"),
    "proxy": NP_("channel", "Told by a proxy"),  # a grid worker or caregiver tells someone with no contact
}
# Why a targeted person has not been reached (the coverage object's `unreachable`).
CAUSE: Mapping[str, Term] = {
    "no_contact": NP_("unreached cause", "no usable contact"),
    "all_failed": NP_("unreached cause", "every channel failed"),
    "pending": NP_("unreached cause", "still sending or awaiting a receipt"),
    "expired": NP_("unreached cause", "expired"), "cancelled": NP_("unreached cause", "cancelled"),
}
# What a message did: issued, updated, withdrawn — and a cancelled warning (one with a level) is lifted (解除).
MSG_TYPE: Mapping[str, Term] = {
    "alert": NP_("message type", "issued"), "update": NP_("message type", "updated"),
    "cancel": NP_("message type", "withdrawn"), "cancel_warning": NP_("message type", "lifted"),
}
# A follow-up message as a thing of its own (the public column's badges and links).
NOTICE: Mapping[str, Term] = {
    "update": NP_("notice", "Update notice"), "cancel": NP_("notice", "Cancellation notice"),
}
ROLE: Mapping[str, Term] = {
    "admin": NP_("role", "admin"), "viewer": NP_("role", "viewer"), "publisher": NP_("role", "publisher"),
}
# Message languages, named in the reader's language (the endonyms are in `i18n.ENDONYMS`).
LANGUAGE: Mapping[str, Term] = {
    "zh-CN": NP_("language", "Simplified Chinese"), "en": NP_("language", "English"),
}

# Whether a scheduled disclosure came by its deadline (GET /v1/catalogue/compliance, the dashboard, the notice).
COMPLIANCE: Mapping[str, Term] = {
    "on_time": NP_("compliance", "published on time"), "late": NP_("compliance", "published late"),
    "overdue": NP_("compliance", "overdue, not published"), "not_due": NP_("compliance", "not yet due"),
}

KINDS: Mapping[str, Mapping[str, Term]] = {
    "severity": SEVERITY, "level": LEVEL, "level_colour": LEVEL_COLOUR, "urgency": URGENCY, "certainty": CERTAINTY,
    "alert_status": ALERT_STATUS, "delivery_status": DELIVERY_STATUS, "channel": CHANNEL, "cause": CAUSE,
    "msg_type": MSG_TYPE, "notice": NOTICE, "language": LANGUAGE, "role": ROLE, "compliance": COMPLIANCE,
}

# Words about places and people that every page and message shares.
CITYWIDE = NP_("place", "citywide")
EVERYONE = NP_("people", "everyone")
SEPARATOR = NP_("punctuation", ", ")  # between names in a list
COLON = NP_("punctuation", ": ")  # between a label and its value
DATETIME = NP_("strftime", "%Y-%m-%d %H:%M (UTC+8)")  # local time (Asia/Shanghai) as readers see it
NOTHING = NP_("placeholder", "—")  # an empty value


class Terms:
    """The shared words in one language."""

    def __init__(self, lang: str) -> None:
        self.lang = lang
        self._t = translator(lang)

    def _say(self, entry: Term) -> str:
        return self._t.pgettext(*entry)

    def __call__(self, kind: str, code: object) -> str:
        """The term for `code` of `kind` ("severity", "level", "channel", …); an unknown code is shown as it is."""
        text = str(getattr(code, "value", code))
        entry = KINDS[kind].get(text)
        return text if entry is None else self._say(entry)

    def msg_type(self, msg_type: str, *, warning: bool) -> str:
        """What a message did; a cancel of a warning lifts it (解除), any other cancel withdraws it (撤销)."""
        return self("msg_type", "cancel_warning" if warning and msg_type == "cancel" else msg_type)

    @property
    def citywide(self) -> str:
        return self._say(CITYWIDE)

    @property
    def everyone(self) -> str:
        return self._say(EVERYONE)

    @property
    def separator(self) -> str:
        return self._say(SEPARATOR)

    @property
    def colon(self) -> str:
        return self._say(COLON)

    @property
    def nothing(self) -> str:
        return self._say(NOTHING)

    def join(self, names: Iterable[str]) -> str:
        return self.separator.join(names)

    def places(self, names: Iterable[str]) -> str:
        """District names joined, or the city as a whole when the list is empty (an alert for everywhere)."""
        return self.join(names) or self.citywide

    def people(self, names: Iterable[str]) -> str:
        """Group names joined, or everyone when the list is empty (an alert for all residents)."""
        return self.join(names) or self.everyone

    def when(self, moment: datetime | None, tz: tzinfo) -> str:
        """A moment in local time (`tz`: Asia/Shanghai), as readers of this language write it ("" for none)."""
        if moment is None:
            return ""
        aware = moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)
        return aware.astimezone(tz).strftime(self._say(DATETIME))


def term(kind: str, code: object, lang: str) -> str:
    """One term in one language."""
    return Terms(lang)(kind, code)
