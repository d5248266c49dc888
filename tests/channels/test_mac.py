"""`KeyedMac`, the HMAC-SHA256 that signs every link and digests every number of an SMS batch: it must be exactly
HMAC (RFC 2104), or links already sent stop verifying and receipts stop matching their numbers."""

from __future__ import annotations

import hashlib
import hmac

import pytest

from channels.mac import KeyedMac


@pytest.mark.parametrize("key_length", [0, 1, 32, 63, 64, 65, 200])  # shorter, equal to, longer than a block
def test_it_is_hmac_sha256_for_keys_of_every_length(key_length: int) -> None:
    key = bytes(range(256))[:key_length]
    for prefix, message in ((b"", b""), (b"", b"one message"), (b"notifier-token-v1\x00manage\x00", b"\x03" * 51),
                            (b"p" * 100, "长治市 +8613800000000".encode())):
        assert KeyedMac(key, prefix)(message) == hmac.new(key, prefix + message, hashlib.sha256).digest()


def test_one_keyed_mac_signs_many_messages_each_on_its_own() -> None:
    """Its state is copied for each message: nothing of one message leaks into the next one's tag."""
    mac = KeyedMac(b"k" * 40)
    first, second = mac(b"first"), mac(b"second")
    assert (mac(b"first"), mac(b"second")) == (first, second)
    assert second == hmac.new(b"k" * 40, b"second", hashlib.sha256).digest()
