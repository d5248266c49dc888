"""CAP 1.2 as plain data: the parsed document, its vocabularies, how they map to ours, and the errors.

    NotifierError
    ├── CapNotWellFormed (400)   not XML, or XML with a DTD / entity / external reference (refused, never expanded)
    ├── CapTooLarge (413)        more than MAX_DOCUMENT_BYTES
    └── InvalidInput
        └── CapInvalid (422)     well-formed XML that breaks CAP 1.2 or our rules; field errors name the element
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from notifier.errors import InvalidInput, NotifierError
from notifier.localtime import LOCAL_TZ
from notifier.models import MsgType, Severity, Urgency

CAP_NS = "urn:oasis:names:tc:emergency:cap:1.2"
CAP_MEDIA_TYPE = "application/cap+xml"
XMLDSIG_NS = "http://www.w3.org/2000/09/xmldsig#"
GBT_2260 = "GB/T 2260"  # the geocode valueName of a six-digit administrative division code
MAX_DOCUMENT_BYTES = 1024 * 1024
# CAP's dateTime: seconds, and an explicit offset ("Z" is not allowed; -00:00 is UTC).
_CAP_TIME = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}[-+][0-9]{2}:[0-9]{2}")
# Characters XML 1.0 cannot carry at all (control characters a publisher may paste).
_NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")


class CapNotWellFormed(NotifierError):
    status = 400
    title = "Not well-formed XML"


class CapTooLarge(NotifierError):
    status = 413
    title = "Payload too large"


class CapInvalid(InvalidInput):
    title = "Invalid CAP document"


class CapStatus(StrEnum):
    ACTUAL = "Actual"
    EXERCISE = "Exercise"
    SYSTEM = "System"
    TEST = "Test"
    DRAFT = "Draft"


class CapMsgType(StrEnum):
    ALERT = "Alert"
    UPDATE = "Update"
    CANCEL = "Cancel"
    ACK = "Ack"
    ERROR = "Error"


class CapScope(StrEnum):
    PUBLIC = "Public"
    RESTRICTED = "Restricted"
    PRIVATE = "Private"


CATEGORIES = ("Geo", "Met", "Safety", "Security", "Rescue", "Fire", "Health", "Env", "Transport", "Infra", "CBRNE",
              "Other")
URGENCIES = ("Immediate", "Expected", "Future", "Past", "Unknown")
SEVERITIES = ("Extreme", "Severe", "Moderate", "Minor", "Unknown")
CERTAINTIES = ("Observed", "Likely", "Possible", "Unlikely", "Unknown")

# Our words ↔ CAP's. CAP's Unknown severity has no counterpart and is refused; Past/Unknown urgency import as
# `expected` (nothing immediate about them: quiet hours apply).
SEVERITY_TO_CAP: Mapping[Severity, str] = {Severity.EXTREME: "Extreme", Severity.SEVERE: "Severe",
                                           Severity.MODERATE: "Moderate", Severity.MINOR: "Minor"}
SEVERITY_FROM_CAP: Mapping[str, Severity] = {cap: ours for ours, cap in SEVERITY_TO_CAP.items()}
URGENCY_TO_CAP: Mapping[Urgency, str] = {Urgency.IMMEDIATE: "Immediate", Urgency.EXPECTED: "Expected",
                                         Urgency.FUTURE: "Future"}
URGENCY_FROM_CAP: Mapping[str, Urgency] = {**{cap: ours for ours, cap in URGENCY_TO_CAP.items()},
                                           "Past": Urgency.EXPECTED, "Unknown": Urgency.EXPECTED}
MSG_TYPE_TO_CAP: Mapping[MsgType, str] = {MsgType.ALERT: "Alert", MsgType.UPDATE: "Update",
                                          MsgType.CANCEL: "Cancel"}
MSG_TYPE_FROM_CAP: Mapping[str, MsgType] = {cap: ours for ours, cap in MSG_TYPE_TO_CAP.items()}
# A catalogue domain's CAP category; domains are data, so anything not listed is "Other".
DOMAIN_CATEGORY: Mapping[str, str] = {"environment": "Env", "health": "Health", "transit": "Transport",
                                      "disaster": "Safety"}
DEFAULT_CERTAINTY = "Likely"


def xml_text(text: str) -> str:
    """Text with the characters XML 1.0 cannot carry dropped."""
    return _NOT_XML.sub("", text)


def parse_cap_time(text: str) -> datetime:
    """A CAP dateTime (`2026-05-20T14:03:00+08:00`) → an aware datetime; ValueError otherwise."""
    if not _CAP_TIME.fullmatch(text):
        raise ValueError(f"{text!r} is not a CAP time: YYYY-MM-DDThh:mm:ss with an offset such as +08:00")
    return datetime.fromisoformat(text)


def format_cap_time(moment: datetime | float) -> str:
    """An instant as CAP writes it: Beijing time, whole seconds, `+08:00`."""
    value = moment if isinstance(moment, datetime) else datetime.fromtimestamp(moment, LOCAL_TZ)
    return value.astimezone(LOCAL_TZ).replace(microsecond=0).isoformat()


# ---------------------------------------------------------------- the parsed document


@dataclass(frozen=True, slots=True)
class CapReference:
    """One `sender,identifier,sent` triple of `references`."""

    sender: str
    identifier: str
    sent: datetime

    def text(self) -> str:
        return f"{self.sender},{self.identifier},{format_cap_time(self.sent)}"


@dataclass(frozen=True, slots=True)
class CapGeocode:
    value_name: str
    value: str


@dataclass(frozen=True, slots=True)
class CapArea:
    description: str
    geocodes: tuple[CapGeocode, ...] = ()
    polygons: tuple[str, ...] = ()
    circles: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class CapInfo:
    language: str  # as written; CAP's default is en-US
    categories: tuple[str, ...]
    event: str
    urgency: str
    severity: str
    certainty: str
    headline: str | None = None
    description: str | None = None
    instruction: str | None = None
    expires: datetime | None = None
    sender_name: str | None = None
    web: str | None = None
    parameters: tuple[tuple[str, str], ...] = ()
    areas: tuple[CapArea, ...] = ()

    def parameter(self, name: str) -> str | None:
        """The first parameter of that valueName."""
        return next((value for key, value in self.parameters if key == name), None)


@dataclass(frozen=True, slots=True)
class CapAlert:
    identifier: str
    sender: str
    sent: datetime
    status: CapStatus
    msg_type: CapMsgType
    scope: CapScope
    references: tuple[CapReference, ...] = ()
    infos: tuple[CapInfo, ...] = ()
    restriction: str | None = None
    note: str | None = None

    def reference_keys(self) -> list[tuple[str, str]]:
        """(sender, identifier) of every reference: what the store resolves to our alert ids."""
        return [(ref.sender, ref.identifier) for ref in self.references]

