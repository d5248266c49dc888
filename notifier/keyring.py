"""The server secret: which key signs new links, which older keys still verify the links they signed, and the key
that turns a phone number into a digest nobody can search without it.

Configuration (`[server]`, or `NOTIFIER_SERVER__…`): `secret` signs; `secret_id` is the key id written into every
new link (`<id>.<body>.<tag>`, `notifier.tokens`); `previous_secrets` (`{id = secret}`) are keys that no longer
sign but still verify. Rotating: move the current secret under its id into `previous_secrets`, set a new `secret`
and `secret_id`; links already sent keep working until they expire (a year at most), then drop the old key. A
link made before key ids (no id in it) is checked against every key held. Without a configured secret, one is
generated once and kept in the database (a copy of the database can then forge links: docs/erasure.md).

A `Keyring` IS the signing secret (a `str`), so every function that takes the secret as text — HMACs of codes and
rate-limit keys, CSRF fields — keeps taking it; only `notifier.tokens` asks it for the older keys.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from collections.abc import Mapping
from types import MappingProxyType

KEY_ID = re.compile(r"^[A-Za-z0-9_-]{1,16}$")  # URL-safe and without ".", the separator of a token's parts
KEY_ID_RULE = "a key id is 1 to 16 letters, digits, '-' or '_'"
_NUMBER_DIGEST = b"notifier-number-digest-v1"


class Keyring(str):
    """The signing secret (the string itself), its key id, and the retired keys that still verify (id → secret)."""

    key_id: str | None
    previous: Mapping[str, str]

    def __new__(cls, secret: str, key_id: str | None = None, previous: Mapping[str, str] | None = None) -> Keyring:
        if not secret:
            raise ValueError("the server secret is empty")
        for name in ([key_id] if key_id is not None else []) + list(previous or {}):
            if not KEY_ID.match(name):
                raise ValueError(KEY_ID_RULE)
        if key_id is not None and key_id in (previous or {}):
            raise ValueError(f"key id {key_id!r} names both the signing secret and a previous one")
        ring = super().__new__(cls, secret)
        ring.key_id = key_id
        ring.previous = MappingProxyType(dict(previous or {}))
        return ring

    def verifying(self, key_id: str | None) -> list[str]:
        """The secrets that may have signed a token naming `key_id`: that one key (none when unknown), or — a token
        from before key ids — every key held, the signing one first."""
        if key_id is None:
            return [str(self), *self.previous.values()]
        if key_id == self.key_id:
            return [str(self)]
        return [self.previous[key_id]] if key_id in self.previous else []


def keyed_digest(secret: str, *parts: str) -> str:
    """The HMAC-SHA256 (hex) of `parts` joined by NUL under the signing secret: what codes, rate-limit keys and
    CSRF fields are derived with, so that the database holds none of the values behind them."""
    return hmac.new(str(secret).encode(), "\x00".join(parts).encode(), hashlib.sha256).hexdigest()


def ring_of(secret: str) -> Keyring:
    """`secret` as a Keyring: itself when it is one, else a one-key ring without a key id."""
    return secret if isinstance(secret, Keyring) else Keyring(secret)


def number_digest_key(secret: str) -> bytes:
    """The key of every stored digest of a phone number (receipts' match keys): derived from the signing secret,
    so that a copy of the database without the configured secret cannot be searched for a number."""
    return hmac.new(str(secret).encode(), _NUMBER_DIGEST, hashlib.sha256).digest()
