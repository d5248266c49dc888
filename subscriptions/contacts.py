"""Contact validation and normalisation: every address is checked and put in one canonical form before it is
stored, so that deduplication, masking and sending all see the same thing.

Decisions, and why:
- Mobile numbers are those of the service's country only (mainland China, +86, by default), stored in E.164.
  Domestic SMS signatures and templates cannot reach +852/+853/+886 or foreign numbers, and the log scrubber and
  the test suite's log scanner only recognise mainland numbers. Letters are refused outright: phonenumbers would
  read `138OO138OOO` as a vanity number (O → 6) and text a stranger, and would drop an `ext 5` silently.
- Email addresses: ASCII local part (non-ASCII needs SMTPUTF8, which government relays rarely offer);
  internationalised domains (`a@政府.cn`) are accepted and stored as A-labels (`a@xn--mxtq1m.cn`), the form SMTP
  and DNS use, so the same mailbox is one address however it was typed. Fullwidth characters typed with a
  Chinese input method (`ａ＠ｘ．ｏｒｇ`) are folded to ASCII first (NFKC).
- WeChat openids are 28 characters of `[A-Za-z0-9_-]` starting with `o` (official accounts and mini programs):
  anything else is not an openid of ours, and could not be found by the log scrubber either.
Error messages never repeat the value: it is personal data and error texts travel through proxies and logs.
"""

from __future__ import annotations

import base64
import binascii
import re
import secrets
import unicodedata
from urllib.parse import urlsplit

import phonenumbers

DEFAULT_PHONE_REGION = "CN"
# What a person may type around the digits of a mobile number: spaces, dashes, dots, brackets, one + (`(+86)`).
_MOBILE_CHARS = re.compile(r"[0-9 ().+-]+")
_MOBILE_TYPES = (phonenumbers.PhoneNumberType.MOBILE, phonenumbers.PhoneNumberType.FIXED_LINE_OR_MOBILE)
_LOCAL_PART = re.compile(r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+(?:\.[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+)*")
_LABEL = re.compile(r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?")
_TLD = re.compile(r"(?:[a-z]{2,63}|xn--[a-z0-9-]{1,59})")
_OPENID = re.compile(r"o[A-Za-z0-9_-]{27}")
_URL_FORBIDDEN = re.compile(r"[\x00-\x20\x7f]")
WEBHOOK_SECRET_PREFIX = "whsec_"  # noqa: S105 - the Standard Webhooks prefix, not a secret

MOBILE_MESSAGE = "must be a mainland China mobile number: 11 digits starting with 1, +86 optional"
EMAIL_MESSAGE = "must be an email address such as name@example.org"
OPENID_MESSAGE = "must be a WeChat openid: 28 letters, digits, '-' or '_', starting with 'o'"


def normalize_mobile(raw: str, region: str = DEFAULT_PHONE_REGION) -> str:
    """A mobile number of `region`'s country in E.164 (`+8613800000001`); ValueError when it is anything else.

    Accepts the ways people write one: `13800138000`, `+86 138 0013 8000`, `008613800138000`, `86-138-0013-8000`.
    """
    value = unicodedata.normalize("NFKC", raw).strip()
    if not _MOBILE_CHARS.fullmatch(value) or value.count("+") > 1:
        raise ValueError(MOBILE_MESSAGE)
    try:
        parsed = phonenumbers.parse(value, region)
    except phonenumbers.NumberParseException as exc:
        raise ValueError(MOBILE_MESSAGE) from exc
    if parsed.country_code != phonenumbers.country_code_for_region(region) or not phonenumbers.is_valid_number(
            parsed):
        raise ValueError(MOBILE_MESSAGE)
    if phonenumbers.number_type(parsed) not in _MOBILE_TYPES:
        raise ValueError("is a landline or service number: SMS needs a mobile number")
    return phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)


def _ascii_domain(domain: str) -> str:
    """The domain in lower-case A-labels; ValueError when it is not a public DNS name with a dot."""
    try:
        ascii_domain = domain.encode("idna").decode("ascii").lower()
    except UnicodeError as exc:  # an empty or over-long label, or characters IDNA forbids
        raise ValueError(EMAIL_MESSAGE) from exc
    labels = ascii_domain.split(".")
    if len(ascii_domain) > 253 or len(labels) < 2 or not all(_LABEL.fullmatch(label) for label in labels):
        raise ValueError(EMAIL_MESSAGE)
    if not _TLD.fullmatch(labels[-1]):
        raise ValueError(EMAIL_MESSAGE)
    return ascii_domain


def normalize_email(raw: str) -> str:
    """`local@domain` with the domain in lower-case A-labels (IDN accepted); ValueError when malformed."""
    value = unicodedata.normalize("NFKC", raw).strip()
    local, at, domain = value.rpartition("@")
    if not at or not local or len(local) > 64 or not _LOCAL_PART.fullmatch(local):
        raise ValueError(EMAIL_MESSAGE)
    address = f"{local}@{_ascii_domain(domain)}"
    if len(address) > 254:
        raise ValueError(EMAIL_MESSAGE)
    return address


def validate_openid(raw: str) -> str:
    """A WeChat openid as given (openids are case-sensitive); ValueError when it does not look like one."""
    value = raw.strip()
    if not _OPENID.fullmatch(value):
        raise ValueError(OPENID_MESSAGE)
    return value


def validate_webhook_url(raw: str) -> str:
    """Syntax only (http/https, a host, no credentials); where it may point is the SSRF guard's business."""
    value = raw.strip()
    if len(value) > 2000:
        raise ValueError("webhook URL is too long (2000 characters at most)")
    # urlsplit silently drops tabs and newlines, so the URL checked would not be the URL stored.
    if _URL_FORBIDDEN.search(value):
        raise ValueError("webhook URL must not contain spaces or control characters")
    try:
        parts = urlsplit(value)
        _ = parts.port
    except ValueError as exc:  # a malformed IPv6 literal or port
        raise ValueError("webhook URL has an invalid host or port") from exc
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError("webhook must be an http(s) URL with a host")
    if parts.username is not None or parts.password is not None:
        raise ValueError("webhook URL must not carry credentials")
    return value


def generate_webhook_secret() -> str:
    """A Standard Webhooks secret: 32 random bytes, base64, `whsec_` prefix."""
    return WEBHOOK_SECRET_PREFIX + base64.b64encode(secrets.token_bytes(32)).decode()


def validate_webhook_secret(raw: str) -> str:
    """A Standard Webhooks secret (`whsec_` prefix optional) of 24 to 64 bytes; ValueError otherwise."""
    value = raw.strip()
    body = value.removeprefix(WEBHOOK_SECRET_PREFIX)
    try:
        key = base64.b64decode(body, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise ValueError("webhook secret must be whsec_ followed by base64") from exc
    if not 24 <= len(key) <= 64:
        raise ValueError("webhook secret must hold 24 to 64 bytes")
    return value
