"""CAP 1.2 interchange (SPEC "CAP 1.2"): read a CAP document into an alert, write an alert as CAP, name messages
the GB/T 35965.1 way, and list public alerts in a CAP Atom feed. Pure functions over plain data; the store, the
API and the feeds wire them (docs/governance.md).

    model.py    the parsed document (dataclasses), CAP's vocabularies and their mapping to ours, the errors
    parse.py    bytes → CapAlert: defusedxml (no DTD, entities or external references), the schema's shapes
    imports.py  CapAlert → CapImport: the AlertIn to publish, the en texts, the CapOrigin to keep
    render.py   a stored alert → CAP 1.2 bytes, valid against the OASIS schema
    ids.py      [cap] settings, GB/T 35965.1 identifiers, the idempotency key of sender + identifier
    feed.py     the entries of /disclosures/feed.cap.atom
"""

from notifier.cap.feed import CapFeedEntry, cap_feed_entry, entry_element
from notifier.cap.ids import (
    CapIdentity,
    CapSettings,
    cap_key,
    gbt_identifier,
    own_identifier,
    own_sender,
    parse_gbt_identifier,
)
from notifier.cap.imports import CapImport, CapOrigin, CapTexts, import_cap
from notifier.cap.model import (
    CAP_MEDIA_TYPE,
    CAP_NS,
    CapAlert,
    CapInvalid,
    CapNotWellFormed,
    CapReference,
    CapStatus,
    CapTooLarge,
)
from notifier.cap.parse import parse_cap
from notifier.cap.render import CapEnvelope, CapNames, render_cap

__all__ = [
    "CAP_MEDIA_TYPE", "CAP_NS", "CapAlert", "CapEnvelope", "CapFeedEntry", "CapIdentity", "CapImport", "CapInvalid",
    "CapNames", "CapNotWellFormed", "CapOrigin", "CapReference", "CapSettings", "CapStatus", "CapTexts", "CapTooLarge",
    "cap_feed_entry", "cap_key", "entry_element", "gbt_identifier", "import_cap", "own_identifier", "own_sender",
    "parse_cap", "parse_gbt_identifier", "render_cap",
]
