"""Contact validation and normalisation: every address is checked and put in one canonical form before it is
stored, so that deduplication, masking and sending all see the same thing."""

from __future__ import annotations

import base64
import re
import secrets
from urllib.parse import urlsplit

import phonenumbers

DEFAULT_PHONE_REGION = "CN"
_EMAIL = re.compile(r"^[A-Za-z0-9.!#$%&'*+/=?^_`{|}~-]+@[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
                    r"(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)+$")
_OPENID = re.compile(r"^[A-Za-z0-9_-]{6,64}$")
WEBHOOK_SECRET_PREFIX = "whsec_"


def normalize_mobile(raw: str, region: str = DEFAULT_PHONE_REGION) -> str:
    """A mobile number in E.164 (`+8613800000001`); ValueError when it is not a valid mobile number."""
    try:
        parsed = phonenumbers.parse(raw.strip(), region)
    except phonenumbers.NumberParseException as exc:
        raise ValueError("not a phone number") from exc
    if not phonenumbers.is_valid_number(parsed):
        raise ValueError("not a valid phone number")
    kind = phonenumbers.number_type(parsed)
    if kind not in (phonenumbers.PhoneNumberType.MOBILE, phonenumbers.PhoneNumberType.FIXED_LINE_OR_MOBILE):
        raise ValueError("not a mobile number: SMS needs a mobile")
    return phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)


def normalize_email(raw: str) -> str:
    """An email address with its domain lower-cased; ValueError when malformed."""
    value = raw.strip()
    if len(value) > 254 or not _EMAIL.match(value):
        raise ValueError("not a valid email address")
    local, _, domain = value.rpartition("@")
    if len(local) > 64:
        raise ValueError("not a valid email address")
    return f"{local}@{domain.lower()}"


def validate_openid(raw: str) -> str:
    value = raw.strip()
    if not _OPENID.match(value):
        raise ValueError("not a WeChat openid")
    return value


def validate_webhook_url(raw: str) -> str:
    """Syntax only (http/https, a host, no credentials); where it may point is the SSRF guard's business."""
    value = raw.strip()
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError("webhook must be an http(s) URL with a host")
    if parts.username or parts.password:
        raise ValueError("webhook URL must not carry credentials")
    if len(value) > 2000:
        raise ValueError("webhook URL is too long")
    try:
        _ = parts.port
    except ValueError as exc:
        raise ValueError("webhook URL has an invalid port") from exc
    return value


def generate_webhook_secret() -> str:
    """A Standard Webhooks secret: 32 random bytes, base64, `whsec_` prefix."""
    return WEBHOOK_SECRET_PREFIX + base64.b64encode(secrets.token_bytes(32)).decode()


def validate_webhook_secret(raw: str) -> str:
    value = raw.strip()
    body = value.removeprefix(WEBHOOK_SECRET_PREFIX)
    try:
        key = base64.b64decode(body, validate=True)
    except ValueError as exc:
        raise ValueError("webhook secret must be whsec_ followed by base64") from exc
    if not 24 <= len(key) <= 64:
        raise ValueError("webhook secret must hold 24 to 64 bytes")
    return value
