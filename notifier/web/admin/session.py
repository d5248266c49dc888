"""Admin dashboard sessions: sign in with an admin or viewer API key, then a server-side session.

The browser holds only a random session id in a cookie (`HttpOnly; SameSite=Strict; Path=/admin`, plus `Secure`
when `server.public_url` is https); the server holds the session in the store (`admin_sessions`, migration 0010),
under the SHA-256 of its id — a copy of the table signs nobody in — so a restart signs nobody out and every web
process on the database agrees. Sign-out deletes the row; a session idle for 30 minutes, or 12 hours old, is
over. The raw key is never kept: a session holds the key's SHA-256, and every request looks the key up again, so
revoking a key ends its sessions at once.

Every form carries a CSRF token: after sign-in the session's own (an HMAC of its id with the server secret, so
nothing more is stored), and before it (the sign-in form) a token that is also set in a short-lived cookie and
must match (double submit), so that another site cannot sign a browser in with the attacker's key.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass

from aiohttp import web

from notifier.errors import Forbidden
from notifier.keyring import keyed_digest
from notifier.keys import authenticate, hash_key
from notifier.models import Role
from notifier.store import Store

SESSION_COOKIE = "notifier_admin"
LOGIN_COOKIE = "notifier_admin_login"
COOKIE_PATH = "/admin"
ADMIN_ROLES = (Role.ADMIN, Role.VIEWER)


@dataclass(frozen=True, slots=True)
class AdminSession:
    """What the server knows about a signed-in browser."""

    key_hash: str  # SHA-256 of the API key it signed in with (looked up again on every request)
    key_id: str
    role: Role
    csrf: str
    created_at: float
    seen_at: float


class SessionStore:
    """Sessions in the store, by the SHA-256 of their id: idle and absolute lifetimes, a bound on how many. The
    policy lives here; each call is given the store and the server secret (opened after the app is built)."""

    def __init__(self, *, idle_seconds: float = 1800.0, lifetime_seconds: float = 12 * 3600.0,
                 max_sessions: int = 10_000, clock: Callable[[], float] = time.time,
                 seen_precision: float = 60.0) -> None:
        self.idle_seconds = idle_seconds
        self.lifetime_seconds = lifetime_seconds
        self.max_sessions = max_sessions
        self.seen_precision = seen_precision  # `seen_at` is written at most this often (the dashboard polls)
        self._clock = clock

    @staticmethod
    def _slot(session_id: str) -> str:
        return hashlib.sha256(session_id.encode()).hexdigest()

    @staticmethod
    def _csrf(secret: str, session_id: str) -> str:
        return keyed_digest(secret, "admin-csrf", session_id)

    async def create(self, store: Store, secret: str, key_hash: str, key_id: str,
                     role: Role) -> tuple[str, AdminSession]:
        """A new session (and its id, the cookie value): always a fresh id, so a planted id is never adopted."""
        now = self._clock()
        session_id = secrets.token_urlsafe(32)
        await store.create_admin_session(self._slot(session_id), key_hash, key_id, role.value, now,
                                         created_after=now - self.lifetime_seconds,
                                         seen_after=now - self.idle_seconds, most=self.max_sessions)
        return session_id, AdminSession(key_hash=key_hash, key_id=key_id, role=role,
                                        csrf=self._csrf(secret, session_id), created_at=now, seen_at=now)

    async def get(self, store: Store, secret: str, session_id: str | None) -> AdminSession | None:
        """The live session of an id (its idle time restarts), or None."""
        if not session_id:
            return None
        now = self._clock()
        row = await store.admin_session(self._slot(session_id), now, created_after=now - self.lifetime_seconds,
                                        seen_after=now - self.idle_seconds, seen_before=now - self.seen_precision)
        if row is None:
            return None
        return AdminSession(key_hash=str(row[0]), key_id=str(row[1]), role=Role(row[2]),
                            csrf=self._csrf(secret, session_id), created_at=float(row[3]), seen_at=now)

    async def drop(self, store: Store, session_id: str | None) -> None:
        if session_id:
            await store.drop_admin_session(self._slot(session_id))

    async def drop_key(self, store: Store, key_hash: str) -> None:
        await store.drop_admin_sessions_of(key_hash)


def tokens_match(given: str | None, expected: str | None) -> bool:
    """Constant-time comparison of two CSRF tokens; a missing one never matches."""
    if not given or not expected:
        return False
    return hmac.compare_digest(given.encode(), expected.encode())


async def sign_in(store: Store, raw_key: str) -> tuple[str, str, Role]:
    """(key hash, key id, role) of an admin or viewer key; Unauthorized for an unknown or revoked key,
    Forbidden for a publisher key."""
    record = await authenticate(store, f"Bearer {raw_key.strip()}")
    role = Role(record.role)
    if role not in ADMIN_ROLES:
        raise Forbidden("publisher keys cannot sign in to the admin dashboard")
    return hash_key(raw_key.strip()), record.id, role


async def still_valid(store: Store, session: AdminSession) -> bool:
    """Whether the session's key still exists, is not revoked and may still sign in."""
    record = await store.key_by_hash(session.key_hash)
    return record is not None and record.revoked_at is None and Role(record.role) in ADMIN_ROLES


def set_cookie(response: web.StreamResponse, name: str, value: str, *, secure: bool,
               max_age: int | None = None) -> None:
    """A cookie only the admin pages see and scripts cannot read."""
    response.set_cookie(name, value, path=COOKIE_PATH, httponly=True, samesite="Strict", secure=secure,
                        max_age=max_age)


def clear_cookie(response: web.StreamResponse, name: str, *, secure: bool) -> None:
    response.set_cookie(name, "", path=COOKIE_PATH, httponly=True, samesite="Strict", secure=secure, max_age=0,
                        expires="Thu, 01 Jan 1970 00:00:00 GMT")

