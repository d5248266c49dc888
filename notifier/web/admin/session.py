"""Admin dashboard sessions: sign in with an admin or viewer API key, then a server-side session.

The browser holds only a random session id in a cookie (`HttpOnly; SameSite=Strict; Path=/admin`, plus `Secure`
when `server.public_url` is https); the server holds the session. Sessions live in this process's memory: a
restart signs everybody out, and with several web processes behind a balancer the balancer must keep a browser on
one process (or the sessions move to a table). The raw key is never kept: a session holds the key's SHA-256, and
every request looks the key up again, so revoking a key ends its sessions at once.

Every form carries a CSRF token: the session's own after sign-in, and before it (the sign-in form) a token that
is also set in a short-lived cookie and must match (double submit), so that another site cannot sign a browser in
with the attacker's key.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass, replace

from aiohttp import web

from notifier.errors import Forbidden
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
    """Sessions in memory, by the SHA-256 of their id; idle and absolute lifetimes; a bound on how many."""

    def __init__(self, *, idle_seconds: float = 1800.0, lifetime_seconds: float = 12 * 3600.0,
                 max_sessions: int = 10_000, clock: Callable[[], float] = time.monotonic) -> None:
        self.idle_seconds = idle_seconds
        self.lifetime_seconds = lifetime_seconds
        self.max_sessions = max_sessions
        self._clock = clock
        self._sessions: dict[str, AdminSession] = {}

    def __len__(self) -> int:
        return len(self._sessions)

    @staticmethod
    def _slot(session_id: str) -> str:
        return hashlib.sha256(session_id.encode()).hexdigest()

    def _expired(self, session: AdminSession, now: float) -> bool:
        return now - session.seen_at > self.idle_seconds or now - session.created_at > self.lifetime_seconds

    def create(self, key_hash: str, key_id: str, role: Role) -> tuple[str, AdminSession]:
        """A new session (and its id, the cookie value): always a fresh id, so a planted id is never adopted."""
        now = self._clock()
        if len(self._sessions) >= self.max_sessions:
            self._prune(now)
        if len(self._sessions) >= self.max_sessions:  # all live: the oldest sign-in goes
            oldest = min(self._sessions, key=lambda slot: self._sessions[slot].created_at)
            del self._sessions[oldest]
        session_id = secrets.token_urlsafe(32)
        session = AdminSession(key_hash=key_hash, key_id=key_id, role=role, csrf=secrets.token_urlsafe(32),
                               created_at=now, seen_at=now)
        self._sessions[self._slot(session_id)] = session
        return session_id, session

    def get(self, session_id: str | None) -> AdminSession | None:
        """The live session of an id (its idle time restarts), or None."""
        if not session_id:
            return None
        slot, now = self._slot(session_id), self._clock()
        session = self._sessions.get(slot)
        if session is None:
            return None
        if self._expired(session, now):
            del self._sessions[slot]
            return None
        session = replace(session, seen_at=now)
        self._sessions[slot] = session
        return session

    def drop(self, session_id: str | None) -> None:
        if session_id:
            self._sessions.pop(self._slot(session_id), None)

    def drop_key(self, key_hash: str) -> None:
        for slot in [s for s, session in self._sessions.items() if session.key_hash == key_hash]:
            del self._sessions[slot]

    def _prune(self, now: float) -> None:
        for slot in [s for s, session in self._sessions.items() if self._expired(session, now)]:
            del self._sessions[slot]


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

