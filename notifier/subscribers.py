"""Subscriber management: validate against the catalogue and the SSRF guard, then store; views mask contacts."""

from __future__ import annotations

import time
import uuid
from datetime import UTC, datetime

from channels.ssrf import ForbiddenDestination, check_destination
from notifier.errors import FieldError, InvalidInput, NotFoundError
from notifier.models import SEVERITY_RANK, Severity
from notifier.store import Store
from notifier.store.records import AssistedRecord, SubscriberRecord
from subscriptions.contacts import generate_webhook_secret
from subscriptions.masking import mask_contact, mask_label
from subscriptions.models import (
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


async def check_webhook(url: str, allow_private: bool, field: str) -> None:
    try:
        await check_destination(url, allow_private=allow_private)
    except ForbiddenDestination as exc:
        # A name that does not resolve here may resolve where the worker runs; the send-time resolver guard
        # checks every attempt, so only a definite "points somewhere private" is refused now.
        if isinstance(exc.__cause__, (OSError, TimeoutError)):
            return
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


async def assisted_errors(store: Store, people: list[AssistedIn], prefix: str = "assists") -> list[FieldError]:
    """The regions and groups of a proxy's people that the catalogue does not hold."""
    errors = []
    for i, person in enumerate(people):
        for code in await store.missing_codes("regions", [person.region]):
            errors.append(FieldError(f"{prefix}.{i}.region", f"unknown region {code!r}"))
        for code in await store.missing_codes("population_groups", person.groups):
            errors.append(FieldError(f"{prefix}.{i}.groups", f"unknown group {code!r}"))
    return errors


def assisted_records(people: list[AssistedIn]) -> list[AssistedRecord]:
    """A new proxy's people, numbered 1, 2, … as the store numbers them."""
    return [AssistedRecord(id=uuid.uuid4().hex, label=p.label, region=p.region, groups=p.groups, seq=n)
            for n, p in enumerate(people, 1)]


async def add_assisted(store: Store, proxy_id: str, people: list[AssistedIn]) -> list[AssistedRecord]:
    """Add people to a proxy's list (numbered after its last); NotFoundError when `proxy_id` is no proxy."""
    errors = await assisted_errors(store, people)
    if errors:
        raise InvalidInput("the people cannot be added as given", errors)
    added = await store.add_assisted(proxy_id, assisted_records(people))
    if added is None:
        raise NotFoundError(f"no proxy {proxy_id}")
    return added


def channel_errors(contacts: Contacts, subscriptions: list[SubscriptionIn]) -> list[FieldError]:
    given = contacts.addresses()
    return [FieldError(f"subscriptions.{i}.channels", f"no {kind} contact was given for this channel")
            for i, sub in enumerate(subscriptions) for kind in sub.channels if kind not in given]


def severity_rank(sub: SubscriptionIn) -> int:
    return SEVERITY_RANK[Severity(sub.min_severity.value)] if sub.min_severity else 0


async def create_subscriber(store: Store, body: SubscriberIn, *, allow_private_webhooks: bool,
                            status: SubscriberStatus = SubscriberStatus.ACTIVE) -> tuple[SubscriberRecord, str | None]:
    """Store a new subscriber; returns it and the webhook secret when one was generated (shown once)."""
    errors = await _check_catalogue(store, body.region, body.groups, body.subscriptions)
    errors += channel_errors(body.contacts, body.subscriptions)
    errors += await assisted_errors(store, body.assists)
    if errors:
        raise InvalidInput("the subscriber cannot be created as given", errors)
    if body.contacts.webhook:
        await check_webhook(body.contacts.webhook, allow_private_webhooks, "contacts.webhook")
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
