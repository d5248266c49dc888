"""How much anyone may ask for: the one place for the rules that keep the sign-up and manage pages from pumping
SMS and the dashboard's sign-in from guessing keys (SPEC "Citizens without a link", "Privacy of figures").

- **Verification codes and links**, across `/subscribe`, `/subscribe/resend` and `/manage` together: one client
  (IP, `notifier.web.clients`) at most 5 an hour; one number, or one email address, at most 1 a minute and 5 a
  day; the whole service at most `[verification] hourly_cap` an hour. A request that would send two (a mobile and
  an email) counts two. Over any of them, `RateLimited` (429) and nothing is counted, created or sent.
- **Dashboard sign-in**: after 10 failed attempts from one client within 10 minutes, every attempt from it —
  right key or wrong — is refused for 10 minutes (`LoginThrottled`, 429).

Everything is counted in the store (`rate_events`), so every web process agrees and a restart forgets nothing;
numbers, addresses and client addresses are counted under an HMAC with the server secret, never stored. Each
refusal is logged once, its contact and client address masked; the web edge counts it in
`notifier_rate_limited_total{limit}`.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

from notifier.errors import NotifierError
from notifier.keyring import keyed_digest
from notifier.store import Store
from notifier.store.verification import Limit, Windows
from subscriptions.masking import mask_contact, mask_ip

log = logging.getLogger("notifier.limits")

CLIENT_LIMITS: Windows = ((3600.0, 5),)
CONTACT_LIMITS: Windows = ((60.0, 1), (86400.0, 5))
HOUR = 3600.0
SCOPE_CLIENT, SCOPE_SMS, SCOPE_EMAIL, SCOPE_ALL = "verify-client", "sms-code", "email-link", "verify-all"
CONTACT_SCOPES = {"sms": SCOPE_SMS, "email": SCOPE_EMAIL}
ALL = "all"  # the one key of the service-wide cap

LOGIN_FAILURES = 10  # failed sign-ins from one client…
LOGIN_WINDOW = 600.0  # …within this many seconds…
LOGIN_LOCKOUT = 600.0  # …refuse every sign-in from it for this long
SCOPE_LOGIN_FAILED, SCOPE_LOGIN_LOCKED = "admin-login-failed", "admin-login-locked"


class RateLimited(NotifierError):
    """Too many codes or links (for this number or address, from this client, or in all): try again after
    `retry_after` seconds. `scope` says which limit."""

    status = 429
    title = "Too many requests"

    def __init__(self, detail: str, retry_after: float, scope: str) -> None:
        super().__init__(detail)
        self.retry_after = max(1, int(retry_after + 0.999))  # whole seconds, rounded up (Retry-After)
        self.scope = scope


class LoginThrottled(RateLimited):
    """Too many failed dashboard sign-ins from this client: every attempt is refused until `retry_after`."""


def limit_key(secret: str, scope: str, value: str) -> str:
    """The counted key of a number, address or client: an HMAC, so the table holds none of them."""
    return keyed_digest(secret, "limit", scope, value)


def verification_limits(secret: str, client: str, contacts: Sequence[tuple[str, str]],
                        hourly_cap: int) -> list[Limit]:
    """The limits one request for codes or links to `contacts` ((kind, address): sms or email) takes."""
    count = len(contacts)
    limits = [Limit(SCOPE_CLIENT, limit_key(secret, SCOPE_CLIENT, client), CLIENT_LIMITS, count)]
    limits += [Limit(CONTACT_SCOPES[kind], limit_key(secret, CONTACT_SCOPES[kind], address), CONTACT_LIMITS)
               for kind, address in contacts]
    limits.append(Limit(SCOPE_ALL, ALL, ((HOUR, hourly_cap),), count))
    return limits


def refusal(scope: str, wait: float, client: str, contacts: Sequence[tuple[str, str]]) -> RateLimited:
    """The RateLimited of a tripped limit, logged once (contacts and client masked)."""
    log.warning("verification limit reached: %s (client %s, contacts %s); retry in %d s", scope, mask_ip(client),
                ", ".join(mask_contact(kind, address) or "" for kind, address in contacts) or "none", wait)
    return RateLimited(f"too many requests ({scope}); try again later", wait, scope)


async def take_verification(store: Store, secret: str, *, client: str, contacts: Sequence[tuple[str, str]],
                            hourly_cap: int, now: float) -> None:
    """Count one request for codes or links to `contacts`, or raise RateLimited with nothing counted."""
    tripped = await store.take_limits(verification_limits(secret, client, contacts, hourly_cap), now)
    if tripped is not None:
        raise refusal(*tripped, client, contacts)


# ---------------------------------------------------------------- dashboard sign-in


async def check_login(store: Store, secret: str, client: str, now: float) -> None:
    """LoginThrottled while the client is locked out (before its key is even looked at)."""
    locks = await store.rate_events(SCOPE_LOGIN_LOCKED, limit_key(secret, SCOPE_LOGIN_LOCKED, client),
                                    now - LOGIN_LOCKOUT)
    if locks:
        raise LoginThrottled("too many failed sign-ins; try again later", locks[0] + LOGIN_LOCKOUT - now,
                             SCOPE_LOGIN_LOCKED)


async def login_failed(store: Store, secret: str, client: str, now: float) -> bool:
    """Count a failed sign-in; True when it is the one that locks the client out (then logged)."""
    failed = Limit(SCOPE_LOGIN_FAILED, limit_key(secret, SCOPE_LOGIN_FAILED, client),
                   ((LOGIN_WINDOW, LOGIN_FAILURES - 1),))
    if await store.take_limits([failed], now) is None:
        return False
    # The window already held LOGIN_FAILURES - 1 failures: this is the one that locks the client out.
    await store.add_rate_event(SCOPE_LOGIN_LOCKED, limit_key(secret, SCOPE_LOGIN_LOCKED, client), now)
    log.warning("dashboard sign-in locked for %d s after %d failed attempts from %s", LOGIN_LOCKOUT,
                LOGIN_FAILURES, mask_ip(client))
    return True
