"""A subscriber's own requests, reached through a signed link (`/manage/<token>`, `/unsubscribe/<token>`):
unsubscribe, change topics, channels, quiet hours and locale, download what is held, and be forgotten.

Validation happens before anything is written, and each change is one store call (one transaction), so a refused
form changes nothing. The web edge (`notifier.web.citizen.manage`) only reads forms and renders pages.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from pydantic import ValidationError

from notifier.catalogue import Catalogue
from notifier.errors import FieldError, InvalidInput, NotFoundError
from notifier.store import Store
from notifier.store.records import SubscriberRecord
from subscriptions.models import CHANNEL_KINDS, LOCALES, PROXY_ROLE, QuietHours
from subscriptions.quiet_hours import format_hhmm

EXPORT_FORMAT = "notifier-subscriber-data/1"


@dataclass(frozen=True, slots=True)
class TopicChoice:
    """One topic as the manage page offers it."""

    key: str
    name: str
    name_en: str | None
    domain: str
    channels: list[str]  # chosen now, in order; empty when not subscribed


def usable_channels(record: SubscriberRecord) -> list[str]:
    """Channels the subscriber has a working contact for, in the usual order."""
    return [kind for kind in CHANNEL_KINDS if kind in record.contacts and kind not in record.disabled]


async def unsubscribe(store: Store, subscriber_id: str, topic: str | None) -> int:
    """Stop `topic` (every topic when None); returns how many subscriptions were removed."""
    return await store.delete_subscriptions(subscriber_id, topic)


async def topic_choices(store: Store, record: SubscriberRecord) -> list[TopicChoice]:
    """Every topic, with the subscriber's channels where subscribed."""
    mine = {topic: channels for topic, channels, _ in record.subscriptions}
    return [TopicChoice(t["key"], t["name"], t.get("name_en"), t["domain"], mine.get(t["key"], []))
            for t in await store.list_topics()]


async def change_subscriptions(store: Store, record: SubscriberRecord, chosen: Mapping[str, Sequence[str]]) -> int:
    """Make the subscriptions exactly `chosen` (topic → channels; a topic with no channel is dropped). A kept
    topic keeps its channel order and minimum severity. Returns how many subscriptions there are now."""
    known = {t["key"] for t in await store.list_topics()}
    usable = usable_channels(record)
    errors = [FieldError(f"topic.{key}", "unknown topic") for key in chosen if key not in known]
    errors += [FieldError(f"topic.{key}", f"no usable {kind} contact")
               for key, kinds in chosen.items() for kind in kinds if kind not in usable]
    if errors:
        raise InvalidInput("the subscriptions cannot be changed as given", errors)
    current = {topic: (channels, rank) for topic, channels, rank in record.subscriptions}
    rows: list[tuple[str, list[str], int]] = []
    for key, kinds in chosen.items():
        if not kinds:
            continue
        before, rank = current.get(key, ([], 0))
        ordered = [k for k in before if k in kinds] + [k for k in usable if k in kinds and k not in before]
        rows.append((key, ordered, rank))
    if not await store.replace_subscriptions(record.id, rows):
        raise NotFoundError("no such subscriber (deleted?)")
    return len(rows)


async def change_settings(store: Store, record: SubscriberRecord, *, locale: str, quiet_start: str,
                          quiet_end: str) -> None:
    """Locale and quiet hours (both times blank: none)."""
    errors = []
    if locale not in LOCALES:
        errors.append(FieldError("locale", f"one of {', '.join(LOCALES)}"))
    quiet: tuple[int | None, int | None] = (None, None)
    if quiet_start.strip() or quiet_end.strip():
        try:
            quiet = QuietHours(start=quiet_start.strip(), end=quiet_end.strip()).minutes()
        except ValidationError as exc:
            errors += [FieldError(str(e["loc"][0]) if e["loc"] else "quiet_hours",
                                  str(e["msg"]).removeprefix("Value error, ")) for e in exc.errors()]
    if errors:
        raise InvalidInput("the settings cannot be changed as given", errors)
    fields = {"locale": locale, "quiet_start": quiet[0], "quiet_end": quiet[1]}
    if not await store.update_subscriber(record.id, fields, None, {}, None):
        raise NotFoundError("no such subscriber (deleted?)")


async def forget(store: Store, subscriber_id: str) -> bool:
    """Delete the subscriber and every contact from every table; past coverage is unchanged."""
    return await store.forget_subscriber(subscriber_id)


def _iso(value: float | None) -> str | None:
    return None if value is None else datetime.fromtimestamp(value, UTC).isoformat()


def _quiet(record: SubscriberRecord) -> dict[str, str] | None:
    if record.quiet_start is None or record.quiet_end is None:
        return None
    return {"start": format_hhmm(record.quiet_start), "end": format_hhmm(record.quiet_end),
            "time_zone": "Asia/Shanghai"}


async def export(store: Store, catalogue: Catalogue, record: SubscriberRecord) -> dict[str, Any]:
    """Everything held about the subscriber, unmasked (this is its owner asking). A webhook's signing secret is
    named but not shown: it is a credential, not information about anyone."""
    held = await store.held_data(record.id)
    states = {c["channel"]: c for c in held["contacts"]}
    region = catalogue.region(record.region)
    contacts = [{"channel": kind, "address": address,
                 "verified_at": _iso(states.get(kind, {}).get("verified_at")),
                 "disabled_at": _iso(states.get(kind, {}).get("disabled_at")),
                 "disabled_reason": states.get(kind, {}).get("disabled_reason"),
                 **({"signing_secret": "held, not shown"} if kind == "webhook" else {})}
                for kind, address in record.contacts.items()]
    consent = held["consent"]
    return {
        "format": EXPORT_FORMAT,
        "exported_at": _iso(time.time()),
        "subscriber": {
            "id": record.id, "status": record.status, "created_at": _iso(record.created_at),
            "region": {"code": record.region, "name": region.name if region else None},
            "groups": [{"code": g, "name": (grp.name if (grp := catalogue.group(g)) else None)}
                       for g in record.groups],
            "locale": record.locale, "quiet_hours": _quiet(record),
            "consent": {"source": record.consent_source, "at": _iso(record.consent_at),
                        "text_version": consent["version"] if consent else None,
                        "given_at": _iso(consent["given_at"]) if consent else None},
        },
        "contacts": contacts,
        "subscriptions": [{"topic": t, "channels": ch, "min_severity_rank": rank or None}
                          for t, ch, rank in record.subscriptions],
        "deliveries": [{**d, **{k: _iso(d[k]) for k in ("created_at", "sent_at", "delivered_at", "finished_at")}}
                       for d in held["deliveries"]],
        # A proxy's own list of the people it tells (its notes, unmasked: the proxy is asking).
        **({"role": record.role, "assists": [{"number": p.seq, "label": p.label, "region": p.region,
                                              "groups": p.groups} for p in record.assists]}
           if record.role == PROXY_ROLE else {}),
    }
