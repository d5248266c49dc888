"""A citizen without a link gets back to their manage page (SPEC "Citizens without a link"): they give the
mobile number or email address they subscribed with; a number gets a 6-digit code by SMS (the verification
template), which `check_code` turns into the subscriber; an address gets the manage link by email.

No enumeration: the answer is the same whether or not anyone has that contact. Both take the same limits
(`notifier.limits`, shared with sign-up and resend) and the same store round trip (`Store.open_manage_code`:
limits, lookup and the code's hash in one transaction); the send itself is returned as a coroutine for the caller
to run after answering, so that no gateway's time can tell a known contact from an unknown one.

Codes are kept like sign-up codes (the `verifications` table, channel `manage`, HMAC bound to the number, 10
minutes, 5 wrong tries). Only a verified contact of an active subscriber opens its page; a contact stopped by a TD
reply still does — the owner proved it once, and a code asked for is not a message they opted out of.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Coroutine, Mapping
from dataclasses import dataclass
from typing import Any

from channels.base import Channel
from notifier import tokens
from notifier.i18n import N_
from notifier.limits import refusal, verification_limits
from notifier.store import Store
from notifier.verification import (
    CODE_TTL,
    MAX_ATTEMPTS,
    VERIFIED,
    code_hash,
    link_email,
    new_code,
    normalise_code,
    send_link_email,
    text_code,
)
from subscriptions.contacts import normalize_email, normalize_mobile

log = logging.getLogger("notifier.manage_request")

CODE_CHANNEL = "manage"  # the verifications row of a manage code (a sign-up's is the contact's channel)
Send = Coroutine[Any, Any, bool]

EMAIL_SUBJECT = N_("Your subscription page · Changzhi public-welfare notifications")
EMAIL_TEXT = N_("Hello,\n\nSomeone (we hope you) asked for the page where this address's subscription to the "
                "Changzhi public-welfare notifications is managed. Open it here to change topics, channels, quiet "
                "hours, or to unsubscribe:\n\n%(url)s\n\nThe link is valid for 90 days; anyone who has it can "
                "manage the subscription, so do not forward this email. If you did not ask for it, ignore it: "
                "nothing has changed.\n")


@dataclass(frozen=True, slots=True)
class Contact:
    """What a citizen typed, normalised: `kind` is "sms" (E.164) or "email"."""

    kind: str
    address: str


def read_contact(raw: str) -> Contact | None:
    """A mainland mobile number or an email address (as the sign-up form takes them), or None."""
    text = raw.strip()
    try:
        if "@" in text:
            return Contact("email", normalize_email(text))
        return Contact("sms", normalize_mobile(text))
    except ValueError:
        return None


def manage_code_hash(secret: str, address: str, code: str) -> str:
    """What is stored of a manage code: an HMAC bound to the number (the page's form carries the number)."""
    return code_hash(secret, f"{CODE_CHANNEL}\x00{address}", code)


async def request_access(store: Store, channels: Mapping[str, Channel], *, secret: str, public_url: str,
                         contact: Contact, client: str, hourly_cap: int, lang: str,
                         now: float | None = None) -> Send | None:
    """Take the limits (RateLimited: nothing counted, nothing sent) and, when an active subscriber has this
    verified contact, open a code for it (SMS) — the same round trip either way. Returns the send to run after
    answering (a code by SMS, the manage link by email), or None when nobody has the contact."""
    now = time.time() if now is None else now
    pairs = [(contact.kind, contact.address)]
    code = new_code() if contact.kind == "sms" else ""
    found = await store.open_manage_code(verification_limits(secret, client, pairs, hourly_cap), contact.kind,
                                         contact.address, CODE_CHANNEL,
                                         manage_code_hash(secret, contact.address, code) if code else "",
                                         now + CODE_TTL, now)
    if isinstance(found, tuple):
        raise refusal(*found, client, pairs)
    if found is None:
        log.info("manage page asked for by a contact nobody has (%s)", contact.kind)
        return None
    log.info("manage page asked for", extra={"subscriber": found, "channel": contact.kind})
    if contact.kind == "sms":
        return text_code(channels.get("sms"), contact.address, code, found)
    url = f"{public_url.rstrip('/')}/manage/{tokens.make_token(secret, tokens.MANAGE, found)}"
    return send_manage_link(channels["email"], found, contact.address, url, lang)


async def send_manage_link(channel: Channel, subscriber_id: str, address: str, url: str, lang: str) -> bool:
    """Email the manage link in `lang`; whether the mail server accepted it."""
    return await send_link_email(channel, link_email(url, lang, EMAIL_SUBJECT, EMAIL_TEXT, "manage-link"),
                                 subscriber_id, address)


async def check_code(store: Store, secret: str, phone: str, raw: str, now: float | None = None) -> str | None:
    """The subscriber whose page a right code opens (used once), or None — for a wrong, expired, locked or
    missing code and for a number nobody has alike."""
    code = normalise_code(raw)
    if code is None:
        return None
    outcome, found = await store.check_manage_code("sms", phone, CODE_CHANNEL, manage_code_hash(secret, phone, code),
                                                   time.time() if now is None else now, MAX_ATTEMPTS)
    log.info("manage code checked", extra={"subscriber": found, "outcome": outcome})
    return found if outcome == VERIFIED else None
