"""API keys: 256 random bits with a readable type prefix, stored only as SHA-256, shown once, revocable.

Publishers are scoped to topic patterns (`env.*`), given explicitly (`*` for every topic: never by default),
and belong to a department (`notifier.departments`); viewers read; admins do everything. A pattern is a topic
key with `*` (any run) and `?` (one character) as wildcards, and must match at least one topic of the catalogue:
a typo would otherwise give a key that can publish nothing, found out only when a warning has to go out.
"""

from __future__ import annotations

import difflib
import fnmatch
import hashlib
import re
import secrets
import time
import uuid
from collections import OrderedDict
from dataclasses import dataclass, replace

from notifier.audit import CLI, Actor
from notifier.departments import catalogue_departments, check_department
from notifier.errors import FieldError, Forbidden, InvalidInput, Unauthorized
from notifier.i18n import N_
from notifier.input_rules import CatalogueCodes
from notifier.models import Role
from notifier.store import Store
from notifier.store.catalogue import CodeRows, Vouched
from notifier.store.records import KeyRecord

KEY_PREFIX = "ntf_"
PATTERN = re.compile(r"[a-z0-9*?][a-z0-9.*?-]{0,99}")
BAD_TOPICS = N_("the topic patterns are not valid")  # N_: the CLI says it in its language
BAD_KEY = N_("the key cannot be created as asked")
UNKNOWN_KEY = "unknown API key"
NO_TOPICS = "a publisher key needs topic patterns (--topics), e.g. 'env.*'; '*' for every topic"
NOT_A_PATTERN = "{pattern!r} is not a topic pattern: use topic keys with * and ?, e.g. 'env.*'"
MATCHES_NOTHING = "{pattern!r} matches no topic in the catalogue{hint}"
HINT = " (did you mean {0!r}?)"
TOPICS_NOT_FOR_ROLE = "only publisher keys are scoped to topics (--topics)"
KNOWN_KEYS = 64  # publishing keys a process keeps known (`KnownKeys`): a city's warning offices have a few each


def hash_key(raw: str) -> str:
    return hashlib.sha256(raw.encode()).hexdigest()


async def create_key(store: Store, role: Role, topics: list[str] | None = None, label: str | None = None,
                     department: str | None = None, actor: Actor = CLI) -> tuple[KeyRecord, str]:
    """Create a key; returns its record and the raw key (the only time it exists outside the caller). A publisher
    needs topic patterns that match the catalogue and a department the catalogue names (InvalidInput otherwise);
    other roles take neither. The creation is recorded in the audit log as `actor`'s."""
    topics = list(topics or [])
    catalogue_topics = await store.list_topics()
    refusals: list[InvalidInput] = []
    try:  # every problem of the request at once: the topic patterns' and the department's
        if role is Role.PUBLISHER:
            check_topic_patterns(topics, [t["key"] for t in catalogue_topics])
        elif topics:
            raise InvalidInput(BAD_TOPICS, [FieldError("topics", TOPICS_NOT_FOR_ROLE)])
    except InvalidInput as exc:
        refusals.append(exc)
    try:
        department = check_department(role, department, catalogue_departments(catalogue_topics))
    except InvalidInput as exc:
        refusals.append(exc)
    if refusals:  # one refusal keeps its own words; both together are the key's
        detail = refusals[0].detail if len(refusals) == 1 else BAD_KEY
        raise InvalidInput(detail, [e for refusal in refusals for e in refusal.errors])
    raw = f"{KEY_PREFIX}{role.value[:3]}_{secrets.token_urlsafe(32)}"
    record = KeyRecord(id=uuid.uuid4().hex, prefix=raw[:12], role=role.value, topics=topics,
                       label=label, created_at=time.time(), revoked_at=None, department=department)
    await store.create_key(record, hash_key(raw), actor)
    return record, raw


def check_topic_patterns(patterns: list[str], topic_keys: list[str]) -> None:
    """InvalidInput naming every pattern that is malformed or matches no topic of the catalogue."""
    if not patterns:
        raise InvalidInput(BAD_TOPICS, [FieldError("topics", NO_TOPICS)])
    errors = []
    for pattern in patterns:
        if not PATTERN.fullmatch(pattern):
            errors.append(FieldError("topics", NOT_A_PATTERN.format(pattern=pattern)))
        elif not any(fnmatch.fnmatchcase(key, pattern) for key in topic_keys):
            families = {key.split(".")[0] + ".*" for key in topic_keys}
            close = difflib.get_close_matches(pattern, [*families, *topic_keys], n=1, cutoff=0.6)
            hint = HINT.format(close[0]) if close else ""
            errors.append(FieldError("topics", MATCHES_NOTHING.format(pattern=pattern, hint=hint)))
    if errors:
        raise InvalidInput(BAD_TOPICS, errors)


def presented(header: str | None) -> str:
    """The hash of the key an `Authorization: Bearer …` header presents; Unauthorized when it presents none."""
    if not header or not header.startswith("Bearer "):
        raise Unauthorized("send an API key as `Authorization: Bearer <key>`")
    # Looked up by SHA-256 of the key: timing of the lookup says nothing about how close a guess was.
    return hash_key(header.removeprefix("Bearer ").strip())


def _valid(record: KeyRecord | None) -> KeyRecord:
    if record is None:
        raise Unauthorized(UNKNOWN_KEY)
    if record.revoked_at is not None:
        raise Unauthorized("this API key has been revoked")
    return record


async def authenticate(store: Store, header: str | None) -> KeyRecord:
    """The key of an `Authorization: Bearer …` header; Unauthorized when missing, unknown or revoked."""
    return _valid(await store.key_by_hash(presented(header)))


@dataclass(frozen=True, slots=True)
class Publishing:
    """A publishing request's key and the catalogue's codes its alert is checked against; `vouched` when they were
    not read for this request (`KnownKeys`): the publish's transaction confirms them (`catalogue.confirm`)."""

    key: KeyRecord
    codes: CatalogueCodes
    vouched: Vouched | None = None


async def publishing(store: Store, key_hash: str) -> tuple[KeyRecord, CodeRows]:
    """The key of a hash (`presented`; Unauthorized when unknown or revoked), and the catalogue's codes a publish
    checks its body against, in one read: during a fan-out each read's answer waits for a turn of the busy event
    loop, a turn a red warning's publish need not wait."""
    found = await store.key_and_codes(key_hash)
    if found is None:
        raise Unauthorized(UNKNOWN_KEY)
    return _valid(found[0]), found[1]


class KnownKeys:
    """The publishing keys this process has found valid lately, each with the catalogue's codes read beside it, so
    that the next publish with the key needs no read before its write: under a fan-out each read's answer waits
    for a turn of the busy event loop, and a warning office publishes with the same few keys. Never trusted alone:
    a publish goes on them only `Vouched`, its transaction reads them again and stores nothing if either has
    changed (a revocation, a catalogue edit), and the request is then checked afresh. At most `size` keys, the
    least recently used forgotten first; a key refused is never kept."""

    def __init__(self, size: int = KNOWN_KEYS) -> None:
        self._size = size
        self._known: OrderedDict[str, Publishing] = OrderedDict()

    def get(self, key_hash: str) -> Publishing | None:
        found = self._known.get(key_hash)
        if found is not None:
            self._known.move_to_end(key_hash)
        return found

    def remember(self, key_hash: str, key: KeyRecord, rows: CodeRows) -> Publishing:
        """Keep a key found valid, with the codes read with it; returns them as read for this request (not
        vouched: nothing to confirm)."""
        read = Publishing(key, CatalogueCodes.of(rows))
        self._known[key_hash] = replace(read, vouched=Vouched(key_hash, key, rows))
        self._known.move_to_end(key_hash)
        while len(self._known) > self._size:
            self._known.popitem(last=False)
        return read

    def forget(self, key_hash: str) -> None:
        self._known.pop(key_hash, None)


async def revoke_key(store: Store, key_or_id: str, actor: Actor = CLI) -> KeyRecord | None:
    """Revoke by id or by the raw key itself (recorded in the audit log as `actor`'s)."""
    target = hash_key(key_or_id) if key_or_id.startswith(KEY_PREFIX) else key_or_id
    return await store.revoke_key(target, time.time(), actor)


def require_role(key: KeyRecord, *roles: Role) -> None:
    if Role(key.role) not in roles:
        raise Forbidden(f"a {key.role} key cannot do this; needs {' or '.join(r.value for r in roles)}")


def may_publish(key: KeyRecord, topic: str) -> bool:
    if key.role == Role.ADMIN:
        return True
    if key.role != Role.PUBLISHER:
        return False
    return any(fnmatch.fnmatchcase(topic, pattern) for pattern in key.topics)


def require_publish(key: KeyRecord, topic: str) -> None:
    if not may_publish(key, topic):
        if key.role == Role.PUBLISHER:
            raise Forbidden(f"this publisher key may publish only to {', '.join(key.topics)}")
        raise Forbidden(f"a {key.role} key cannot publish")
