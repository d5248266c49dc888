"""CAP 1.2 between the store and the edge (SPEC "CAP 1.2"; docs/governance.md "Wiring CAP"): read a document
into the alert to publish — its references resolved to our alerts — and say a stored alert as a CAP document.

The pure cores are `notifier.cap` (parse, import, render, identifiers, feed entries); this module only gathers what
they need from the store and the catalogue. Publishing itself is `publish.publish_alert`, the one path of every
alert, so the catalogue's checks, the lifecycle and idempotency apply to CAP exactly as to JSON.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from notifier.cap import (
    CapEnvelope,
    CapImport,
    CapNames,
    CapOrigin,
    CapStatus,
    CapTexts,
    import_cap,
    parse_cap,
    render_cap,
)
from notifier.catalogue import Catalogue
from notifier.localtime import LOCAL_TZ
from notifier.models import AlertStatus
from notifier.store import Store
from notifier.store.records import AlertRow


async def read_cap(store: Store, data: bytes) -> CapImport:
    """The alert a CAP document publishes, with its Update/Cancel `references` resolved to our alerts.
    CapNotWellFormed (400), CapTooLarge (413) or CapInvalid (422) when it cannot be."""
    doc = parse_cap(data)
    resolved = {}
    for sender, identifier in doc.reference_keys():
        found = await store.alert_by_cap(sender, identifier)
        if found is not None:
            resolved[(sender, identifier)] = found
    return import_cap(doc, resolved)


def origin_of(alert: AlertRow) -> CapOrigin | None:
    """What an imported alert kept of its document (None for our own)."""
    return CapOrigin.from_json(alert.cap_origin) if alert.cap_origin else None


def envelope_of(alert: AlertRow, referenced: AlertRow | None = None) -> CapEnvelope:
    """The alert's CAP envelope: the identity stored with it, its status (an exercise keeps the Exercise or Test
    it came as), and the reference to the alert it updates or cancels."""
    if alert.cap_sender is None or alert.cap_identifier is None or alert.cap_sent is None:
        raise ValueError(f"alert {alert.id} has no CAP identity (the store gives every alert one)")
    origin = origin_of(alert)
    status = origin.status if origin is not None else CapStatus.ACTUAL
    references = (envelope_of(referenced).reference(),) if referenced is not None else ()
    return CapEnvelope(alert.cap_sender, alert.cap_identifier, datetime.fromtimestamp(alert.cap_sent, LOCAL_TZ),
                       status, references)


def is_actual(alert: AlertRow) -> bool:
    """Whether the alert is an Actual message (not a recorded Exercise or Test)."""
    return alert.status != AlertStatus.EXERCISE


def english_of(alert: AlertRow) -> CapTexts | None:
    return (CapTexts(alert.headline_en, alert.body_en or "", alert.instruction_en or "")
            if alert.headline_en else None)


@dataclass(frozen=True, slots=True)
class CapNaming:
    """The catalogue's names CAP documents show, as stored (topics added by the API included): loaded once for a
    document or a whole feed."""

    topics: Mapping[str, Mapping[str, Any]]
    regions: Mapping[str, tuple[str, str | None]]
    catalogue: Catalogue

    @classmethod
    async def load(cls, store: Store, catalogue: Catalogue) -> CapNaming:
        return cls(topics={t["key"]: t for t in await store.list_topics()},
                   regions={str(r["code"]): (str(r["name"]), r["name_en"]) for r in await store.list_regions()},
                   catalogue=catalogue)

    def of(self, alert: AlertRow) -> CapNames:
        topic = self.topics.get(alert.topic, {})
        department = alert.department or topic.get("department")
        return CapNames(topic_name=str(topic.get("name", alert.topic)), domain=str(topic.get("domain", "")),
                        topic_name_en=topic.get("name_en"), department=department,
                        department_en=self.catalogue.department_en(department) if department else None,
                        regions=self.regions)


async def cap_document(store: Store, catalogue: Catalogue, alert: AlertRow, *, page_url: str | None) -> bytes:
    """The alert as a CAP 1.2 document, valid against the OASIS schema; `page_url` its public page, if any."""
    referenced = await store.get_alert(alert.references_id) if alert.references_id else None
    names = (await CapNaming.load(store, catalogue)).of(alert)
    return render_cap(alert, envelope_of(alert, referenced), names, en=english_of(alert), web=page_url,
                      origin=origin_of(alert))
