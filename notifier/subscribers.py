"""Subscriber management: validate against the catalogue and the SSRF guard, then store; views mask contacts.

`check_subscriber` is the one check of a subscriber body, for `POST /v1/subscribers` and every import row alike:
every problem at once (the model's, the catalogue's, a contact for every channel asked for), and a region, group
or topic given by code or by catalogue name (`notifier.input_rules`), stored as the code.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from pydantic import ValidationError

from channels.ssrf import ForbiddenDestination, check_destination
from notifier.errors import FieldError, InvalidInput, NotFoundError
from notifier.input_rules import CatalogueCodes, field_errors
from notifier.models import SEVERITY_RANK, Severity
from notifier.store import Store
from notifier.store.records import AssistedRecord, SubscriberRecord
from subscriptions.contacts import generate_webhook_secret
from subscriptions.masking import mask_contact, mask_label
from subscriptions.models import (
    CHANNEL_KINDS,
    Assisted,
    AssistedIn,
    Contacts,
    MinSeverity,
    QuietHours,
    Subscriber,
    SubscriberIn,
    SubscriberPatch,
    SubscriberRole,
    SubscriberStatus,
    Subscription,
    SubscriptionIn,
)

INVALID_SUBSCRIBER = "the subscriber cannot be created as given"


async def check_webhook(url: str, allow_private: bool, field: str) -> None:
    """The SSRF guard's creation-time rule, whole (channels/ssrf.py): a host that is forbidden, or that does not
    resolve here, is refused (422). A name that does not resolve is a typo or a trick far more often than a
    split-horizon name, and a destination taken unchecked is one nobody will ever have checked."""
    try:
        await check_destination(url, allow_private=allow_private)
    except ForbiddenDestination as exc:
        raise InvalidInput("the webhook destination is not allowed", [FieldError(field, str(exc))]) from exc


async def _check_catalogue(store: Store, region: str | None, groups: list[str] | None,
                           subscriptions: list[SubscriptionIn]) -> list[FieldError]:
    errors = []
    if region is not None and await store.missing_codes("regions", [region]):
        errors.append(FieldError("region", f"unknown region {region!r}"))
    for code in await store.missing_codes("population_groups", groups or []):
        errors.append(FieldError("groups", f"unknown group {code!r}"))
    for i, sub in enumerate(subscriptions):
        if await store.missing_codes("topics", [sub.topic]):
            errors.append(FieldError(f"subscriptions.{i}.topic", f"unknown topic {sub.topic!r}"))
    return errors


async def webhook_errors(url: str, allow_private: bool) -> list[FieldError]:
    """`check_webhook` as field errors, to be listed with the others."""
    try:
        await check_webhook(url, allow_private, "contacts.webhook")
    except InvalidInput as exc:
        return exc.errors
    return []


def channel_errors(data: Mapping[str, Any]) -> list[FieldError]:
    """A channel asked for in a subscription without a contact for it, read from the raw body (so that it is
    said even when another field is wrong; a contact given but malformed has its own error)."""
    contacts = data.get("contacts")
    given = {kind for kind, value in contacts.items() if value} if isinstance(contacts, Mapping) else set()
    subscriptions = data.get("subscriptions")
    return [FieldError(f"subscriptions.{i}.channels", f"no {kind} contact was given for this channel")
            for i, sub in enumerate(subscriptions if isinstance(subscriptions, list) else [])
            for kind in (sub.get("channels") if isinstance(sub, Mapping) else None) or []
            if kind in CHANNEL_KINDS and kind not in given]


def check_subscriber(data: Any, codes: CatalogueCodes) -> tuple[SubscriberIn | None, list[FieldError]]:
    """A subscriber body as a subscriber, or every reason it is not one: the model's complaints, regions, groups
    and topics the catalogue does not hold (reported as unknown, with the nearest name, never as a format
    error), and a channel asked for without its contact. Names are replaced by their codes first."""
    if isinstance(data, SubscriberIn):
        data = data.model_dump(mode="json", exclude_none=True)
    resolved, unknown = _with_codes(data, codes) if isinstance(data, Mapping) else (data, [])
    body, errors = None, []
    try:
        body = SubscriberIn.model_validate(resolved)
    except ValidationError as exc:
        errors = field_errors(exc)
    named = {e.field for e in unknown}
    # An unknown value's own format complaint ("region must be a six-digit code") would only mislead.
    errors = [e for e in errors if _owner(e.field) not in named] + unknown
    if isinstance(resolved, Mapping):
        errors += channel_errors(resolved)
    return (None if errors else body), errors


def _owner(path: str) -> str:
    """The field a catalogue check names for a pydantic path: `groups.1` → `groups`."""
    parts = path.split(".")
    if parts[0] == "groups":
        return "groups"
    if parts[0] == "assists" and len(parts) >= 3:  # a proxy's person: `assists.0.groups.1` → `assists.0.groups`
        return ".".join(parts[:3])
    if parts[0] == "subscriptions" and len(parts) >= 3 and parts[2] == "topic":
        return ".".join(parts[:3])
    return path


def _with_codes(data: Mapping[str, Any], codes: CatalogueCodes) -> tuple[dict[str, Any], list[FieldError]]:
    """The body with catalogue names replaced by codes, and an error for each value that names nothing.
    Values that are not text are left for the model to refuse."""
    out, errors = dict(data), []
    if isinstance(region := data.get("region"), str):
        [out["region"]], unknown = codes.resolve("region", [region], "region")
        errors += unknown
    if isinstance(groups := data.get("groups"), list):
        out["groups"], unknown = codes.resolve("group", groups, "groups")
        errors += unknown
    if isinstance(subscriptions := data.get("subscriptions"), list):
        out["subscriptions"] = []
        for i, sub in enumerate(subscriptions):
            topic = sub.get("topic") if isinstance(sub, Mapping) else None
            if isinstance(topic, str):
                [code], unknown = codes.resolve("topic", [topic], f"subscriptions.{i}.topic")
                errors += unknown
            out["subscriptions"].append({**sub, "topic": code} if isinstance(topic, str) else sub)
    if isinstance(assists := data.get("assists"), list):
        out["assists"] = []
        for i, person in enumerate(assists):
            resolved, unknown = _person_with_codes(person, codes, f"assists.{i}")
            out["assists"].append(resolved)
            errors += unknown
    return out, errors


def _person_with_codes(person: Any, codes: CatalogueCodes, where: str) -> tuple[Any, list[FieldError]]:
    """A proxy's person with their region and groups as codes, and an error for each that names nothing."""
    if not isinstance(person, Mapping):
        return person, []
    out, errors = dict(person), []
    if isinstance(region := person.get("region"), str):
        [out["region"]], unknown = codes.resolve("region", [region], f"{where}.region")
        errors += unknown
    if isinstance(groups := person.get("groups"), list):
        out["groups"], unknown = codes.resolve("group", groups, f"{where}.groups")
        errors += unknown
    return out, errors


def contacts_alone(data: Any) -> dict[str, str]:
    """The contacts of a body whose other fields may be wrong, when they are valid on their own."""
    try:
        return Contacts.model_validate(data.get("contacts") if isinstance(data, Mapping) else None).addresses()
    except ValidationError:
        return {}


async def accept_subscriber(store: Store, data: Any, *, allow_private_webhooks: bool) -> SubscriberIn:
    """A new subscriber's body checked in one pass (`check_subscriber`, and the webhook's destination when the
    contacts are valid), or InvalidInput listing every problem."""
    body, errors = check_subscriber(data, await CatalogueCodes.load(store))
    if webhook := contacts_alone(data).get("webhook"):
        errors += await webhook_errors(webhook, allow_private_webhooks)
    if errors or body is None:
        raise InvalidInput(INVALID_SUBSCRIBER, errors)
    return body


def assisted_records(people: list[AssistedIn]) -> list[AssistedRecord]:
    """A new proxy's people, numbered 1, 2, … as the store numbers them."""
    return [AssistedRecord(id=uuid.uuid4().hex, label=p.label, region=p.region, groups=p.groups, seq=n)
            for n, p in enumerate(people, 1)]


async def add_assisted(store: Store, proxy_id: str, people: list[AssistedIn]) -> list[AssistedRecord]:
    """Add people to a proxy's list (numbered after its last); InvalidInput for a district or group the
    catalogue does not hold, NotFoundError when `proxy_id` is no proxy."""
    codes = await CatalogueCodes.load(store)
    errors = [e for i, p in enumerate(people)
              for e in _person_with_codes(p.model_dump(), codes, f"assists.{i}")[1]]
    if errors:
        raise InvalidInput("the people cannot be added as given", errors)
    added = await store.add_assisted(proxy_id, assisted_records(people))
    if added is None:
        raise NotFoundError(f"no proxy {proxy_id}")
    return added


def severity_rank(sub: SubscriptionIn) -> int:
    return SEVERITY_RANK[Severity(sub.min_severity.value)] if sub.min_severity else 0


async def create_subscriber(store: Store, data: SubscriberIn | Mapping[str, Any], *, allow_private_webhooks: bool,
                            status: SubscriberStatus = SubscriberStatus.ACTIVE) -> tuple[SubscriberRecord, str | None]:
    """Check (`accept_subscriber`: every problem at once) and store a new subscriber; returns it and the webhook
    secret when one was generated (shown once)."""
    body = await accept_subscriber(store, data, allow_private_webhooks=allow_private_webhooks)
    generated = None
    secrets: dict[str, str] = {}
    if body.contacts.webhook:
        secrets["webhook"] = body.contacts.webhook_secret or (generated := generate_webhook_secret())
    now = time.time()
    quiet = body.quiet_hours.minutes() if body.quiet_hours else (None, None)
    record = SubscriberRecord(
        id=uuid.uuid4().hex, region=body.region, locale=body.locale, quiet_start=quiet[0], quiet_end=quiet[1],
        status=status.value, consent_source=body.consent_source, consent_at=now, created_at=now,
        groups=body.groups, contacts=body.contacts.addresses(),
        subscriptions=[(s.topic, s.channels, severity_rank(s)) for s in body.subscriptions],
        role=body.role.value, assists=assisted_records(body.assists))
    await store.create_subscriber(record, secrets)
    return record, generated


async def add_subscription(store: Store, subscriber_id: str, body: SubscriptionIn) -> Subscription:
    record = await store.get_subscriber(subscriber_id)
    if record is None:
        raise NotFoundError(f"no subscriber {subscriber_id}")
    errors = await _check_catalogue(store, None, None, [body])
    errors += [FieldError("channels", f"the subscriber has no {kind} contact")
               for kind in body.channels if kind not in record.contacts]
    if errors:
        raise InvalidInput("the subscription cannot be added as given",
                           [FieldError(e.field.removeprefix("subscriptions.0."), e.message) for e in errors])
    await store.put_subscription(subscriber_id, body.topic, body.channels, severity_rank(body))
    return Subscription(topic=body.topic, channels=body.channels, min_severity=body.min_severity)


async def update_subscriber(store: Store, subscriber_id: str, patch: SubscriberPatch, *,
                            allow_private_webhooks: bool) -> tuple[SubscriberRecord, str | None]:
    record = await store.get_subscriber(subscriber_id)
    if record is None:
        raise NotFoundError(f"no subscriber {subscriber_id}")
    errors = await _check_catalogue(store, patch.region, patch.groups, [])
    if errors:
        raise InvalidInput("the subscriber cannot be changed as given", errors)
    fields: dict[str, object] = {}
    if patch.region is not None:
        fields["region"] = patch.region
    if patch.locale is not None:
        fields["locale"] = patch.locale
    if patch.quiet_hours is not None:
        fields["quiet_start"], fields["quiet_end"] = patch.quiet_hours.minutes()
    elif patch.clear_quiet_hours:
        fields["quiet_start"] = fields["quiet_end"] = None
    contacts, secrets, generated = None, {}, None
    if patch.contacts is not None:
        contacts = patch.contacts.addresses()
        if patch.contacts.webhook:
            await check_webhook(patch.contacts.webhook, allow_private_webhooks, "contacts.webhook")
            secrets["webhook"] = patch.contacts.webhook_secret or (generated := generate_webhook_secret())
    await store.update_subscriber(subscriber_id, fields, contacts, secrets, patch.groups)
    updated = await store.get_subscriber(subscriber_id)
    assert updated is not None  # noqa: S101 - it existed a moment ago
    return updated, generated


def subscriber_view(record: SubscriberRecord, generated_secret: str | None = None) -> Subscriber:
    """The API's view: every contact masked; a freshly generated webhook secret shown this once."""
    contacts: dict[str, object] = {kind: mask_contact(kind, addr) for kind, addr in record.contacts.items()}
    if generated_secret:
        contacts["webhook_secret"] = generated_secret
    if record.disabled:
        contacts["disabled"] = dict(record.disabled)
    quiet = None
    if record.quiet_start is not None and record.quiet_end is not None:
        quiet = QuietHours(start=f"{record.quiet_start // 60:02d}:{record.quiet_start % 60:02d}",
                           end=f"{record.quiet_end // 60:02d}:{record.quiet_end % 60:02d}")
    names = {rank: sev for sev, rank in SEVERITY_RANK.items()}
    return Subscriber(
        id=record.id, contacts=contacts, region=record.region, groups=record.groups, locale=record.locale,
        quiet_hours=quiet, status=SubscriberStatus(record.status), consent_source=record.consent_source,
        consent_at=datetime.fromtimestamp(record.consent_at, UTC) if record.consent_at else None,
        created_at=datetime.fromtimestamp(record.created_at, UTC),
        subscriptions=[Subscription(topic=t, channels=ch, min_severity=MinSeverity(names[r].value) if r else None)
                       for t, ch, r in record.subscriptions],
        role=SubscriberRole(record.role), assists=[assisted_view(p) for p in record.assists])


def assisted_view(person: AssistedRecord) -> Assisted:
    """An assisted person as admins see them: the label masked."""
    return Assisted(id=person.id, number=person.seq, label=mask_label(person.label), region=person.region,
                    groups=person.groups)
