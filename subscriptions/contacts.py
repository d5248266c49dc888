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
- Voice numbers (`contacts.voice`) are a mainland mobile, as for SMS, or a mainland fixed line with its area code
  (`0355-2021234`, `(0355)2021234`, `+86 355 202 1234` → `+863552021234`), stored in E.164. A fixed line that
  phonenumbers' metadata does not know is still taken when it has the shape of one (area code 10, 2x or a
  three-digit code, then 7 or 8 digits): numbering plans change faster than the metadata, and a number that does
  not exist fails its first call (the next channel applies), whereas a refused one is never called at all.
  Service numbers (400/800, 95xxx) and numbers outside the mainland are refused.
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
_VOICE_TYPES = (*_MOBILE_TYPES, phonenumbers.PhoneNumberType.FIXED_LINE)
# A mainland fixed line's national number: area code (10, 2x, or three digits from 3xx to 9xx), then 7-8 digits.
_FIXED_LINE = re.compile(r"(?:10|2\d|[3-9]\d{2})[1-9]\d{6,7}")
_MAINLAND_MOBILE_E164 = re.compile(r"\+861[3-9]\d{9}")
_LOCAL_PART = re.compile(r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+(?:\.[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+)*")
_LABEL = re.compile(r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?")
_TLD = re.compile(r"(?:[a-z]{2,63}|xn--[a-z0-9-]{1,59})")
_OPENID = re.compile(r"o[A-Za-z0-9_-]{27}")
_URL_FORBIDDEN = re.compile(r"[\x00-\x20\x7f]")
WEBHOOK_SECRET_PREFIX = "whsec_"  # noqa: S105 - the Standard Webhooks prefix, not a secret

MOBILE_MESSAGE = "must be a mainland China mobile number: 11 digits starting with 1, +86 optional"
VOICE_MESSAGE = ("must be a mainland China mobile number, or a fixed line with its area code such as "
                 "0355-2021234")
EMAIL_MESSAGE = "must be an email address such as name@example.org"
OPENID_MESSAGE = "must be a WeChat openid: 28 letters, digits, '-' or '_', starting with 'o'"


def _parse_phone(raw: str, region: str, message: str) -> phonenumbers.PhoneNumber:
    """`raw` parsed as a number of `region`'s country; ValueError(`message`) for letters, foreign numbers, junk."""
    value = unicodedata.normalize("NFKC", raw).strip()
    if not _MOBILE_CHARS.fullmatch(value) or value.count("+") > 1:
        raise ValueError(message)
    try:
        parsed = phonenumbers.parse(value, region)
    except phonenumbers.NumberParseException as exc:
        raise ValueError(message) from exc
    if parsed.country_code != phonenumbers.country_code_for_region(region):
        raise ValueError(message)
    return parsed


def _e164(parsed: phonenumbers.PhoneNumber) -> str:
    return phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)


def normalize_mobile(raw: str, region: str = DEFAULT_PHONE_REGION) -> str:
    """A mobile number of `region`'s country in E.164 (`+8613800000001`); ValueError when it is anything else.

    Accepts the ways people write one: `13800138000`, `+86 138 0013 8000`, `008613800138000`, `86-138-0013-8000`.
    """
    parsed = _parse_phone(raw, region, MOBILE_MESSAGE)
    if not phonenumbers.is_valid_number(parsed):
        raise ValueError(MOBILE_MESSAGE)
    if phonenumbers.number_type(parsed) not in _MOBILE_TYPES:
        raise ValueError("is a landline or service number: SMS needs a mobile number")
    return _e164(parsed)


def normalize_voice_number(raw: str, region: str = DEFAULT_PHONE_REGION) -> str:
    """A number a voice call can reach, in E.164: a mobile as `normalize_mobile` takes it, or a fixed line with its
    area code (`0355-2021234` → `+863552021234`); ValueError for service numbers and anything else."""
    parsed = _parse_phone(raw, region, VOICE_MESSAGE)
    if phonenumbers.is_valid_number(parsed):
        if phonenumbers.number_type(parsed) not in _VOICE_TYPES:
            raise ValueError("is a service number (400/800, 95xxx…): a voice call needs a person's line")
        return _e164(parsed)
    if region == DEFAULT_PHONE_REGION and _FIXED_LINE.fullmatch(str(parsed.national_number)):
        return _e164(parsed)
    raise ValueError(VOICE_MESSAGE)


def is_mainland_mobile(e164: str) -> bool:
    """Whether a normalised number (E.164) is a mainland mobile rather than a fixed line."""
    return _MAINLAND_MOBILE_E164.fullmatch(e164) is not None


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
