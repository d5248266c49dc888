"""Self-service sign-up: a citizen's subscription stays `pending`, and nothing is sent to it, until a contact is
proven — a 6-digit SMS code, an emailed link, or following the WeChat official account through a QR scene.

- SMS codes come from `secrets.randbelow`, are kept only as HMAC-SHA256 with the server secret, expire after
  10 minutes and allow 5 wrong tries; they go out with the SMS channel's `send_verification` (the configured
  `[channels.sms] verification_template_code`).
- Email links carry a signed `verify-email` token (`notifier.tokens`, 24 h) bound to a digest of the address.
- WeChat: the sign-up gets a random scene reference (kept as SHA-256); a `subscribe` (`qrscene_<ref>`) or `SCAN`
  event carrying it makes the event's openid the subscriber's verified WeChat contact (`bind_wechat`).
- Anti-abuse: every code or link sent here — sign-up, resend, and `/manage` (`notifier.manage_request`) — is
  counted by the one rule of `notifier.limits` (per client, per number or address, and a service-wide hourly cap),
  in the database, before anything is created or sent. Over a limit, `RateLimited` (429) and nothing is created
  or sent: the form cannot be used to pump SMS.
- A subscriber who never verifies is deleted after 24 h (`purge_unverified`): minimum data, shortest retention.

Consent is recorded with its text version (`CONSENT_VERSION`), its time and its source ("web"). The web pages live
in `notifier.web.citizen.subscribe`; this module knows nothing of HTTP. No contact or code is ever logged.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import secrets
import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Protocol, runtime_checkable

from channels.base import Channel, DeliveryResult, Message, Outcome, Recipient
from channels.wechat import WechatEvent
from notifier import tokens
from notifier.errors import NotifierError
from notifier.i18n import DEFAULT_LANG, LANGS, N_, translator
from notifier.keyring import keyed_digest
from notifier.limits import RateLimited as RateLimited  # raised here; defined with the rule it enforces
from notifier.limits import take_verification
from notifier.store import Store
from notifier.store.records import SubscriberRecord
from notifier.subscribers import create_subscriber
from subscriptions.contacts import validate_openid
from subscriptions.models import SubscriberIn, SubscriberStatus

log = logging.getLogger("notifier.verification")

CONSENT_VERSION = "2026-12"  # 2026-11 promised links in every message; SMS carries none
CONSENT_SOURCE = "web"
CODE_DIGITS = 6
CODE_TTL = 600.0  # seconds an SMS code is valid
MAX_ATTEMPTS = 5  # wrong codes before the code is locked (a new one can be asked for, within the number's limits)
PENDING_TTL = 86400.0  # an unverified sign-up is deleted after this long
EMAIL_LINK_TTL = timedelta(hours=24)
SCENE_TTL = 86400.0  # a WeChat scene reference, like the temporary QR code that carries it
SCENE_PREFIX = "sub_"  # our scene strings; WeChat adds `qrscene_` in a follow event
PENDING_PURPOSE = "subscribe-pending"  # the signed reference the verification pages carry
# The preference order of the self-service channels (the order the form lists them): the first one a
# subscription has is tried first under the fallback policy.
CHANNEL_ORDER = ("wechat", "sms", "email")

# Verification outcomes of a code (the store's words).
VERIFIED, WRONG, LOCKED, EXPIRED, MISSING = "verified", "wrong", "locked", "expired", "missing"


class VerificationUnavailable(NotifierError):
    """The channel a contact needs for its verification is not configured (or cannot verify)."""

    status = 422
    title = "Invalid input"


@runtime_checkable
class CodeSender(Protocol):
    """An SMS channel that can text a verification code (both bundled providers can)."""

    async def send_verification(self, phone: str, code: str) -> DeliveryResult: ...


@dataclass(frozen=True, slots=True)
class SignUp:
    """What a sign-up started: the pending subscriber, and what was sent to verify it."""

    subscriber: SubscriberRecord
    reference: str  # signed; the verification pages carry it
    sms_sent: bool | None = None  # None: no mobile given
    email_sent: bool | None = None  # None: no email given
    wechat_scene: str | None = None  # the QR scene string, when WeChat was chosen


def _now(now: float | None) -> float:
    return time.time() if now is None else now


# ---------------------------------------------------------------- codes and keys


def new_code() -> str:
    """Six random digits (leading zeros kept)."""
    return f"{secrets.randbelow(10 ** CODE_DIGITS):0{CODE_DIGITS}d}"


def code_hash(secret: str, subscriber_id: str, code: str) -> str:
    """What is stored of a code: an HMAC bound to the subscriber (a stolen table reveals no code)."""
    return keyed_digest(secret, "sms-code", subscriber_id, code)


def scene_hash(scene: str) -> str:
    # The scene is 128 random bits: a plain hash is enough to keep it from being usable if the table leaks.
    return hashlib.sha256(scene.encode()).hexdigest()


def normalise_code(raw: str) -> str | None:
    """The six digits a person typed (spaces and full-width digits allowed), or None when it cannot be a code."""
    digits = "".join(str(int(c)) if c.isdecimal() else c for c in raw if not c.isspace())
    return digits if len(digits) == CODE_DIGITS and digits.isascii() and digits.isdigit() else None


def pending_reference(secret: str, subscriber_id: str, now: float | None = None) -> str:
    """The signed reference of a pending sign-up, carried by the code and resend forms."""
    return tokens.make_token(secret, PENDING_PURPOSE, subscriber_id, PENDING_TTL,
                             now=datetime.fromtimestamp(_now(now), UTC))


def read_reference(secret: str, reference: str, now: float | None = None) -> str | None:
    """The subscriber id of a reference made here, or None when it is forged or too old."""
    try:
        claims = tokens.read_token(secret, PENDING_PURPOSE, reference, datetime.fromtimestamp(_now(now), UTC))
    except tokens.InvalidToken:
        return None
    return claims.subject


# ---------------------------------------------------------------- sign-up


async def sign_up(store: Store, channels: Mapping[str, Channel], *, secret: str, public_url: str,
                  body: SubscriberIn, wants_wechat: bool, client: str, hourly_cap: int,
                  now: float | None = None) -> SignUp:
    """Create a pending subscriber with its consent, then send what verifies each contact.

    The limits (`notifier.limits`: per client, per number and address, service-wide) are taken first, together:
    over one, RateLimited and nothing is counted, created or sent.
    """
    now = _now(now)
    _check_available(channels, body, wants_wechat)
    contacts = [(kind, address) for kind, address in (("sms", body.contacts.sms), ("email", body.contacts.email))
                if address]
    await take_verification(store, secret, client=client, contacts=contacts, hourly_cap=hourly_cap, now=now)
    record, _ = await create_subscriber(store, body, allow_private_webhooks=False, status=SubscriberStatus.PENDING)
    await store.put_consent(record.id, CONSENT_VERSION, now)
    log.info("self-service sign-up started", extra={"subscriber": record.id})
    sms_sent = email_sent = None
    if body.contacts.sms:
        sms_sent = await _send_code(store, channels["sms"], secret, record.id, body.contacts.sms, now)
    if body.contacts.email:
        email_sent = await send_email_link(channels["email"], secret=secret, public_url=public_url,
                                           subscriber_id=record.id, address=body.contacts.email,
                                           locale=body.locale, now=now)
    scene = await open_wechat_binding(store, record.id, now) if wants_wechat else None
    return SignUp(record, pending_reference(secret, record.id, now), sms_sent, email_sent, scene)


def _check_available(channels: Mapping[str, Channel], body: SubscriberIn, wants_wechat: bool) -> None:
    if body.contacts.sms and not isinstance(channels.get("sms"), CodeSender):
        raise VerificationUnavailable("SMS verification is not available on this service")
    if body.contacts.email and "email" not in channels:
        raise VerificationUnavailable("email is not available on this service")
    if wants_wechat and "wechat" not in channels:
        raise VerificationUnavailable("WeChat is not available on this service")


async def _send_code(store: Store, channel: Channel, secret: str, subscriber_id: str, phone: str,
                     now: float) -> bool:
    """Store a new code's hash, then text the code; whether the provider accepted it."""
    code = new_code()
    await store.put_verification(subscriber_id, "sms", code_hash(secret, subscriber_id, code), now + CODE_TTL, now)
    return await text_code(channel, phone, code, subscriber_id)


async def text_code(channel: Channel | None, phone: str, code: str, subscriber_id: str) -> bool:
    """Text a code through the SMS channel's verification template; whether the provider accepted it."""
    if not isinstance(channel, CodeSender):  # checked before; kept for the type checker
        return False
    result = await channel.send_verification(phone, code)
    if result.outcome is not Outcome.ACCEPTED and result.outcome is not Outcome.DELIVERED:
        log.warning("verification SMS not accepted", extra={"subscriber": subscriber_id, "error": result.error})
        return False
    return True


async def resend_code(store: Store, channels: Mapping[str, Channel], *, secret: str, subscriber_id: str,
                      client: str, hourly_cap: int, now: float | None = None) -> bool | None:
    """A new code for a subscriber whose mobile is not verified yet, within the limits (RateLimited).
    None when there is nothing to verify (no such subscriber, no mobile, or already verified)."""
    now = _now(now)
    record = await store.get_subscriber(subscriber_id)
    phone = record.contacts.get("sms") if record else None
    if record is None or phone is None or (await store.contact_states(subscriber_id)).get("sms") is not None:
        return None
    channel = channels.get("sms")
    if channel is None:
        return False
    await take_verification(store, secret, client=client, contacts=[("sms", phone)], hourly_cap=hourly_cap, now=now)
    return await _send_code(store, channel, secret, subscriber_id, phone, now)


async def check_code(store: Store, secret: str, subscriber_id: str, raw: str,
                     now: float | None = None) -> tuple[str, str]:
    """VERIFIED (the mobile is verified and the subscriber active), WRONG, LOCKED, EXPIRED or MISSING; and the
    subscriber who holds the mobile now: when an active subscriber already had it, the sign-up was merged into
    them (their id, not the sign-up's, is the one whose manage page to show)."""
    code = normalise_code(raw)
    if code is None:
        return WRONG, subscriber_id  # cannot be the code: not counted, it tells nothing
    outcome, holder = await store.check_code(subscriber_id, "sms", code_hash(secret, subscriber_id, code),
                                             _now(now), MAX_ATTEMPTS)
    log.info("verification code checked", extra={"subscriber": subscriber_id, "outcome": outcome,
                                                 "merged_into": holder if holder != subscriber_id else None})
    return outcome, holder


# ---------------------------------------------------------------- email


def address_digest(secret: str, address: str) -> str:
    """A short digest of the address in the link's token: a link for an address that was since changed fails."""
    return keyed_digest(secret, "email", address)[:16]


def email_link(secret: str, public_url: str, subscriber_id: str, address: str, now: float | None = None) -> str:
    token = tokens.make_token(secret, tokens.VERIFY_EMAIL, subscriber_id, EMAIL_LINK_TTL,
                              address_digest(secret, address), now=datetime.fromtimestamp(_now(now), UTC))
    return f"{public_url.rstrip('/')}/subscribe/confirm/{token}"


CONFIRM_SUBJECT = N_("Please confirm your subscription · Changzhi public-welfare notifications")
CONFIRM_TEXT = N_("Hello,\n\nA subscription to the Changzhi public-welfare notification service was requested with "
                  "this address. Open the link below and press \"Confirm\":\n\n%(url)s\n\nThe link is valid for 24 "
                  "hours. If this was not you, ignore this email: nothing more will be sent and the request is "
                  "deleted after 24 hours.\n")


def link_email(url: str, lang: str, subject: str, text: str, purpose: str) -> Message:
    """An email carrying one link, its words (`subject`, `text` with `%(url)s`: catalogue msgids) in `lang`."""
    tr = translator(lang)
    said = tr.gettext(subject)
    return Message(alert_id=purpose, topic=purpose, msg_type="verification", severity="minor", urgency="immediate",
                   level=None, locale=lang, headline=said, subject=said, text=tr.gettext(text) % {"url": url},
                   url=url)


async def send_link_email(channel: Channel, message: Message, subscriber_id: str, address: str) -> bool:
    """Send a `link_email` to one address; whether the mail server accepted it (a refusal is logged, masked)."""
    recipient = Recipient(delivery_id=f"{message.alert_id}-{uuid.uuid4().hex}", subscriber_id=subscriber_id,
                          address=address)
    results = await channel.send(message, [recipient])
    if not results or results[0].outcome is not Outcome.DELIVERED:
        log.warning("link email not accepted", extra={"purpose": message.alert_id, "subscriber": subscriber_id,
                                                      "error": results[0].error if results else None})
        return False
    return True


async def send_email_link(channel: Channel, *, secret: str, public_url: str, subscriber_id: str, address: str,
                          locale: str, now: float | None = None) -> bool:
    """Email the confirmation link; whether the mail server accepted it."""
    url = email_link(secret, public_url, subscriber_id, address, now)
    lang = locale if locale in LANGS else DEFAULT_LANG
    return await send_link_email(channel, link_email(url, lang, CONFIRM_SUBJECT, CONFIRM_TEXT, "verification"),
                                 subscriber_id, address)


def read_email_token(secret: str, token: str, now: float | None = None) -> tokens.TokenClaims | None:
    """The claims of a confirmation link's token, or None when it is forged, malformed or expired."""
    try:
        return tokens.read_token(secret, tokens.VERIFY_EMAIL, token, datetime.fromtimestamp(_now(now), UTC))
    except tokens.InvalidToken:
        return None


async def confirm_email(store: Store, secret: str, token: str, now: float | None = None) -> str | None:
    """Verify the email contact a link names (and activate its subscriber, or merge a repeat sign-up into the
    subscriber who holds the address); the id of the subscriber holding it now, or None when the link is invalid,
    expired, or for an address the subscriber no longer has."""
    claims = read_email_token(secret, token, now)
    if claims is None:
        return None
    record = await store.get_subscriber(claims.subject)
    address = record.contacts.get("email") if record else None
    if address is None or not hmac.compare_digest(address_digest(secret, address), claims.data or ""):
        return None
    holder = await store.verify_contact(claims.subject, "email", _now(now))
    if holder is None:
        return None
    log.info("email contact verified", extra={"subscriber": claims.subject, "holder": holder})
    return holder


# ---------------------------------------------------------------- WeChat


async def open_wechat_binding(store: Store, subscriber_id: str, now: float | None = None) -> str:
    """A fresh scene string for the QR code that links a follow to this subscriber (valid SCENE_TTL)."""
    now = _now(now)
    scene = SCENE_PREFIX + secrets.token_urlsafe(16)  # 26 characters; WeChat allows 64
    await store.put_verification(subscriber_id, "wechat", scene_hash(scene), now + SCENE_TTL, now)
    return scene


async def bind_wechat(store: Store, event: WechatEvent, now: float | None = None) -> str | None:
    """A follow (`subscribe` with `qrscene_<scene>`) or `SCAN` event whose scene is an open binding: its openid
    becomes that subscriber's verified WeChat contact. Returns the subscriber id, or None for any other event."""
    scene = event.scene if event.msg_type == "event" else None
    if not scene or not scene.startswith(SCENE_PREFIX):
        return None
    try:
        openid = validate_openid(event.openid)
    except ValueError:
        return None
    subscriber_id = await store.bind_by_reference("wechat", scene_hash(scene), openid, CHANNEL_ORDER, _now(now))
    if subscriber_id is not None:
        log.info("wechat contact bound", extra={"subscriber": subscriber_id})
    return subscriber_id


# ---------------------------------------------------------------- retention


async def purge_unverified(store: Store, now: float | None = None) -> int:
    """Delete sign-ups still unverified after PENDING_TTL, spent verifications and old limit counters."""
    removed = await store.purge_unverified(_now(now) - PENDING_TTL)
    if removed:
        log.info("unverified sign-ups deleted", extra={"subscribers": removed})
    return removed
