"""WeChat server-URL safe mode (安全模式) and compatible mode (兼容模式): the message encryption of the official
WXBizMsgCrypt samples, for events pushed to `/v1/wechat/callback`.

Docs: https://developers.weixin.qq.com/doc/oplatform/developers/dev/push/encryption.md (message encryption),
https://developers.weixin.qq.com/doc/service/guide/dev/push (server URL modes); the algorithm as in the official
WXBizMsgCrypt samples (Python: `Prpcrypt`, `PKCS7Encoder`, `SHA1`). Test vectors: those published with wechatpy's
crypto tests (the same construction with a corp id in place of the app id), in tests/channels/test_wechat_crypto.py.

- AES key: base64 of the 43-character EncodingAESKey plus "=" (32 bytes); AES-256-CBC, IV = the key's first 16
  bytes.
- Plaintext: 16 random bytes + the message's length (4 bytes, network order) + the message + the app id, padded
  PKCS#7 to a multiple of 32 bytes (not AES's 16: the samples' block size), encrypted, base64: `Encrypt`.
- `msg_signature` = sha1 hex of token, timestamp, nonce and Encrypt sorted as strings and joined; it comes in the
  query with `encrypt_type=aes` (the plain `signature` over token, timestamp and nonce comes too).

Decryption checks, in order: the signature (constant time, timestamp within ±300 s as for plain mode), base64,
block length, padding, the length field, and that the app id at the end is ours — a message for another account
(or one forged without the key) is refused. Errors are `WechatCryptoError` (a ValueError), naming no content.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import secrets
import struct
import time

from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

BLOCK = 32  # the samples pad to 32 bytes, not to AES's 16
KEY_CHARS = 43
SIGNATURE_MAX_SKEW = 300.0


class WechatCryptoError(ValueError):
    """An encrypted message that cannot be trusted or read; the text never quotes the message."""


def msg_signature(token: str, timestamp: str, nonce: str, encrypt: str) -> str:
    """sha1 hex of the four strings sorted and joined (WXBizMsgCrypt's SHA1.getSHA1)."""
    joined = "".join(sorted([token, timestamp, nonce, encrypt]))
    return hashlib.sha1(joined.encode(), usedforsecurity=False).hexdigest()


def aes_key(encoding_aes_key: str) -> bytes:
    """The 32-byte AES key of a 43-character EncodingAESKey; WechatCryptoError for anything else."""
    if len(encoding_aes_key) != KEY_CHARS:
        raise WechatCryptoError(f"EncodingAESKey must be {KEY_CHARS} characters")
    try:
        key = base64.b64decode(encoding_aes_key + "=", validate=True)
    except (binascii.Error, ValueError):
        raise WechatCryptoError("EncodingAESKey is not base64") from None
    if len(key) != 32:
        raise WechatCryptoError("EncodingAESKey does not decode to 32 bytes")
    return key


class MessageCrypt:
    """Encrypts and decrypts one official account's messages (token, EncodingAESKey, app id)."""

    def __init__(self, token: str, encoding_aes_key: str, app_id: str) -> None:
        self._token = token
        self._key = aes_key(encoding_aes_key)
        self._app_id = app_id.encode()

    def _cipher(self) -> Cipher[modes.CBC]:
        return Cipher(algorithms.AES(self._key), modes.CBC(self._key[:16]))

    def signature(self, timestamp: str, nonce: str, encrypt: str) -> str:
        return msg_signature(self._token, timestamp, nonce, encrypt)

    def verify(self, signature: str, timestamp: str, nonce: str, encrypt: str, *, now: float | None = None,
               max_skew: float | None = SIGNATURE_MAX_SKEW) -> bool:
        """Whether `msg_signature` matches, in constant time, with the timestamp within ±`max_skew` s of now
        (`max_skew` None: any time, for the published examples)."""
        if not (signature and nonce and encrypt and timestamp.isascii() and timestamp.isdigit()):
            return False
        if max_skew is not None and abs((time.time() if now is None else now) - int(timestamp)) > max_skew:
            return False
        expected = self.signature(timestamp, nonce, encrypt)
        return hmac.compare_digest(expected.encode(), signature.strip().lower().encode("utf-8", "replace"))

    def encrypt(self, message: bytes, *, random16: bytes | None = None) -> str:
        """`Encrypt` for `message` (what the fake WeChat pushes, and what a reply would carry)."""
        prefix = random16 if random16 is not None else secrets.token_bytes(16)
        if len(prefix) != 16:
            raise ValueError("the random prefix is 16 bytes")
        plain = prefix + struct.pack("!I", len(message)) + message + self._app_id
        pad = BLOCK - len(plain) % BLOCK
        encryptor = self._cipher().encryptor()
        sealed = encryptor.update(plain + bytes([pad]) * pad) + encryptor.finalize()
        return base64.b64encode(sealed).decode()

    def decrypt(self, encrypt: str) -> bytes:
        """The message inside `Encrypt`; WechatCryptoError when it is not ours or not readable."""
        try:
            sealed = base64.b64decode(encrypt, validate=True)
        except (binascii.Error, ValueError):
            raise WechatCryptoError("Encrypt is not base64") from None
        if not sealed or len(sealed) % 16:
            raise WechatCryptoError("Encrypt is not whole AES blocks")
        decryptor = self._cipher().decryptor()
        plain = decryptor.update(sealed) + decryptor.finalize()
        pad = plain[-1]
        if not 1 <= pad <= BLOCK or plain[-pad:] != bytes([pad]) * pad or len(plain) - pad < 20:
            raise WechatCryptoError("Encrypt does not decrypt with this EncodingAESKey")
        content = plain[16:-pad]
        (length,) = struct.unpack("!I", content[:4])
        if length > len(content) - 4:
            raise WechatCryptoError("Encrypt's length field is wrong")
        message, app_id = content[4:4 + length], content[4 + length:]
        if not hmac.compare_digest(app_id, self._app_id):
            raise WechatCryptoError("the message is for another app id")
        return message

    def open(self, signature: str, timestamp: str, nonce: str, encrypt: str, *, now: float | None = None,
             max_skew: float | None = SIGNATURE_MAX_SKEW) -> bytes:
        """Verify, then decrypt: the one call a callback handler makes."""
        if not self.verify(signature, timestamp, nonce, encrypt, now=now, max_skew=max_skew):
            raise WechatCryptoError("msg_signature does not verify")
        return self.decrypt(encrypt)
