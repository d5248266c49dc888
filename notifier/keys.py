"""API keys: 256 random bits with a readable type prefix, stored only as SHA-256, shown once, revocable.

Publishers are scoped to topic patterns (`env.*`); viewers read; admins do everything.
"""

from __future__ import annotations

import fnmatch
import hashlib
import secrets
import time
import uuid

from notifier.errors import Forbidden, Unauthorized
from notifier.models import Role
from notifier.store import Store
from notifier.store.records import KeyRecord

KEY_PREFIX = "ntf_"


def hash_key(raw: str) -> str:
    return hashlib.sha256(raw.encode()).hexdigest()


async def create_key(store: Store, role: Role, topics: list[str] | None = None,
                     label: str | None = None) -> tuple[KeyRecord, str]:
    """Create a key; returns its record and the raw key (the only time it exists outside the caller)."""
    if role is Role.PUBLISHER and not topics:
        topics = ["*"]
    raw = f"{KEY_PREFIX}{role.value[:3]}_{secrets.token_urlsafe(32)}"
    record = KeyRecord(id=uuid.uuid4().hex, prefix=raw[:12], role=role.value, topics=list(topics or []),
                       label=label, created_at=time.time(), revoked_at=None)
    await store.create_key(record, hash_key(raw))
    return record, raw


async def authenticate(store: Store, header: str | None) -> KeyRecord:
    """The key of an `Authorization: Bearer …` header; Unauthorized when missing, unknown or revoked."""
    if not header or not header.startswith("Bearer "):
        raise Unauthorized("send an API key as `Authorization: Bearer <key>`")
    raw = header.removeprefix("Bearer ").strip()
    # Looked up by SHA-256 of the key: timing of the lookup says nothing about how close a guess was.
    record = await store.key_by_hash(hash_key(raw))
    if record is None:
        raise Unauthorized("unknown API key")
    if record.revoked_at is not None:
        raise Unauthorized("this API key has been revoked")
    return record


async def revoke_key(store: Store, key_or_id: str) -> KeyRecord | None:
    """Revoke by id or by the raw key itself."""
    target = hash_key(key_or_id) if key_or_id.startswith(KEY_PREFIX) else key_or_id
    return await store.revoke_key(target, time.time())


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
