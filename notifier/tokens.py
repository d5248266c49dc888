"""Signed, expiring, purpose-bound tokens for links put in messages and pages (manage, unsubscribe, email
verification). The server secret (`Service.secret`) signs them; nothing is stored server-side.

Format (URL-safe, no padding): `<body>.<tag>`, both base64url, or `<key id>.<body>.<tag>` when the signing key has
an id (`[server] secret_id`, `notifier.keyring`: rotating keeps links already sent valid).
  body = kind byte · subject · expiry (uint32, seconds since the epoch, big-endian) · data (UTF-8, optional)
         kind 3: the subject is a 32-hex id (uuid4().hex: subscriber ids), stored as its 16 bytes;
         kind 1: the same for a dashed UUID;
         kind 2: any other subject, stored as a length byte and its UTF-8 bytes.
  tag  = HMAC-SHA256(secret, "notifier-token-v1" · 0 · purpose · 0 · body), first 16 bytes (128 bits).
The purpose is in the MAC but not in the body: a token made for one purpose fails verification for any other.
A subscriber-id token without data is 51 characters (plus the key id and a dot), short enough for a link in an SMS.
The key id selects the one key that verifies; a token without one (made before key ids) is tried against each key.

    InvalidToken        malformed, tampered with, signed by another secret, or made for another purpose
    └── ExpiredToken    authentic, but past its expiry
"""

from __future__ import annotations

import base64
import binascii
import functools
import hmac
import re
import struct
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from channels.mac import KeyedMac
from notifier.keyring import KEY_ID, ring_of

MANAGE = "manage"
UNSUBSCRIBE = "unsubscribe"
VERIFY_EMAIL = "verify-email"
FORM = "form"  # the nonce of a self-service page's form, bound to the link the page was opened with
ASSIST = "assist"  # a proxy's page of whom to tell about one alert (subject: the proxy; data: the alert)
ASSIST_CONFIRM = "assist-confirm"  # confirms one assisted person told (subject: their `proxy` delivery)

# Default lifetimes: unsubscribe links in old messages keep working for a year; a manage link for a season;
# an email verification link for a day; a page's form for two hours; a proxy's list and its confirm links for a
# month (an alert's follow-up is long over by then).
TTL: dict[str, timedelta] = {
    MANAGE: timedelta(days=90),
    UNSUBSCRIBE: timedelta(days=366),
    VERIFY_EMAIL: timedelta(hours=24),
    FORM: timedelta(hours=2),
    ASSIST: timedelta(days=30),
    ASSIST_CONFIRM: timedelta(days=30),
}

_DOMAIN = b"notifier-token-v1"
_TAG_BYTES = 16
_UUID_KIND = 1
_TEXT_KIND = 2
_HEX_KIND = 3
_EXPIRY = struct.Struct(">I")


class InvalidToken(ValueError):
    """The token is malformed, tampered with, or not valid for this purpose."""


class ExpiredToken(InvalidToken):
    """The token is authentic but expired."""

    def __init__(self, claims: TokenClaims) -> None:
        super().__init__("token expired")
        self.claims = claims


@dataclass(frozen=True, slots=True)
class TokenClaims:
    purpose: str
    subject: str
    expires_at: datetime
    data: str | None = None


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def _unb64(text: str) -> bytes:
    """The bytes of a token part, which must be exactly as `_b64` writes them: Python's decoder also takes other
    texts for the same bytes (a last character's unused bits set, characters outside the alphabet dropped), and one
    token has one link — a link changed anywhere is refused, not read as its original."""
    if not text or not text.isascii():
        raise InvalidToken("malformed token")
    try:
        raw = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except (binascii.Error, ValueError) as exc:
        raise InvalidToken("malformed token") from exc
    if _b64(raw) != text:
        raise InvalidToken("malformed token")
    return raw


def _tag(secret: str, purpose: str, body: bytes) -> bytes:
    return _sealed(_keyed(secret, purpose), body)


def _sealed(keyed: KeyedMac, body: bytes) -> bytes:
    return keyed(body)[:_TAG_BYTES]


@functools.lru_cache(maxsize=64)
def _keyed(secret: str, purpose: str) -> KeyedMac:
    """The HMAC of the key and the purpose's prefix, made once: every message links two tokens per recipient."""
    return KeyedMac(secret.encode(), _DOMAIN + b"\x00" + purpose.encode() + b"\x00")


# The subjects that take 17 bytes, exactly as `uuid.UUID` prints them (anything else is text: an upper-case id
# would not read back as itself).
_HEX_SUBJECT = re.compile(r"[0-9a-f]{32}")
_UUID_SUBJECT = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")


def encode_subject(subject: str) -> bytes:
    """A token's subject as its body holds it (the format above)."""
    if _HEX_SUBJECT.fullmatch(subject):
        return bytes([_HEX_KIND]) + bytes.fromhex(subject)
    if _UUID_SUBJECT.fullmatch(subject):
        return bytes([_UUID_KIND]) + uuid.UUID(subject).bytes
    raw = subject.encode()
    if not raw or len(raw) > 255:
        raise ValueError("a token subject is 1 to 255 bytes")
    return bytes([_TEXT_KIND, len(raw)]) + raw


def _decode_subject(body: bytes) -> tuple[str, int]:
    """The subject and the offset just past it."""
    if body[0] in (_UUID_KIND, _HEX_KIND) and len(body) >= 17:
        parsed = uuid.UUID(bytes=body[1:17])
        return (str(parsed) if body[0] == _UUID_KIND else parsed.hex), 17
    if body[0] == _TEXT_KIND and len(body) >= 2 and len(body) >= 2 + body[1]:
        end = 2 + body[1]
        return body[2:end].decode(), end
    raise InvalidToken("malformed token")


class Minter:
    """Tokens of one purpose, expiry and data for any number of subjects: a message's links, two per recipient,
    share everything but the subscriber, so the expiry, the key id and the keyed HMAC state are worked out once."""

    __slots__ = ("_keyed", "_prefix", "_tail")

    def __init__(self, secret: str, purpose: str, ttl: timedelta | float | None = None, data: str | None = None,
                 *, now: datetime | None = None) -> None:
        """Valid for `purpose` until now + ttl (default: the purpose's TTL)."""
        if not secret:
            raise ValueError("a token needs a server secret")
        if ttl is None:
            ttl = TTL[purpose]
        seconds = ttl.total_seconds() if isinstance(ttl, timedelta) else float(ttl)
        issued = (now or datetime.now(UTC)).timestamp()
        self._tail = _EXPIRY.pack(int(issued + seconds)) + (data or "").encode()
        key_id = ring_of(secret).key_id
        self._prefix = "" if key_id is None else f"{key_id}."
        self._keyed = _keyed(secret, purpose)

    def token(self, subject: str) -> str:
        return self.sealed(encode_subject(subject))

    def sealed(self, subject: bytes) -> str:
        """The token of a subject already encoded (`encode_subject`): a message's two links share the encoding."""
        body = subject + self._tail
        return f"{self._prefix}{_b64(body)}.{_b64(_sealed(self._keyed, body))}"


def make_token(secret: str, purpose: str, subject: str, ttl: timedelta | float | None = None,
               data: str | None = None, *, now: datetime | None = None) -> str:
    """A token for `subject`, valid for `purpose` until now + ttl (default: the purpose's TTL)."""
    return Minter(secret, purpose, ttl, data, now=now).token(subject)


def read_token(secret: str, purpose: str, token: str, now: datetime | None = None) -> TokenClaims:
    """The claims of an authentic, unexpired token for `purpose`; raises InvalidToken or ExpiredToken."""
    parts = token.split(".")
    if len(parts) not in (2, 3) or not secret or (len(parts) == 3 and not KEY_ID.match(parts[0])):
        raise InvalidToken("malformed token")
    key_id = parts[0] if len(parts) == 3 else None
    body, tag = _unb64(parts[-2]), _unb64(parts[-1])
    # Every candidate key is tried (no early exit), so the time taken does not say which one came close.
    matches = [hmac.compare_digest(tag, _tag(key, purpose, body)) for key in ring_of(secret).verifying(key_id)]
    if not any(matches):
        raise InvalidToken("bad signature")
    if not body:
        raise InvalidToken("malformed token")
    try:
        subject, offset = _decode_subject(body)
        (expiry,) = _EXPIRY.unpack_from(body, offset)
        data = body[offset + _EXPIRY.size:].decode() or None
    except (struct.error, UnicodeDecodeError, ValueError) as exc:
        raise InvalidToken("malformed token") from exc
    claims = TokenClaims(purpose, subject, datetime.fromtimestamp(expiry, UTC), data)
    if (now or datetime.now(UTC)) >= claims.expires_at:
        raise ExpiredToken(claims)
    return claims
