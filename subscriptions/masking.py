"""The one way personal data is shown: masked. Used by logs, admin/API views and exports.

Mobile `+8613812345678` → `138****5678`; fixed line `+863552021234` → `0355****34`; email `alice@x.gov.cn` →
`a***@x.gov.cn`; openid → `****` + last 4; an assisted person's label (`3号楼2单元 王奶奶`, the proxy's own note)
→ its first character and `***` (`3***`);
webhook URL → scheme://host/… (paths and queries may carry tokens).

`scrub()` is the logging backstop (logs should carry subscriber ids only): it finds contacts in free text and JSON
and masks them, leaving alert/delivery/subscriber ids (32-hex or dashed UUIDs) and timestamps as they were.
"""

from __future__ import annotations

import ipaddress
import logging
import re
from urllib.parse import urlsplit

# Emails first (a QQ address is often a mobile number at qq.com), then openids, then mobile numbers.
# `%40` is a URL-encoded `@` (query strings in access logs); domains may be internationalised.
_EMAIL_IN_TEXT = re.compile(r"(?P<first>[\w.%+-])[\w.%+-]*(?P<at>@|%40)"
                            r"(?P<domain>(?:[\w-]+\.)+(?:xn--[\w-]+|[^\W\d_]{2,}))")
# WeChat openids: 28 characters of [A-Za-z0-9_-], starting with "o" (official accounts, mini programs).
_OPENID_IN_TEXT = re.compile(r"(?<![A-Za-z0-9_-])o[A-Za-z0-9_-]{23}(?P<last>[A-Za-z0-9_-]{4})(?![A-Za-z0-9_-])")
# Ids are 32 hex characters (uuid4().hex) or dashed UUIDs; an 11-digit run inside one is not a phone number.
# They are matched as a whole, first, and left alone.
_HEX_ID = (r"(?<![0-9A-Za-z])(?:[0-9A-Fa-f]{8}(?:-[0-9A-Fa-f]{4}){3}-[0-9A-Fa-f]{12}|[0-9A-Fa-f]{32,})"
           r"(?![0-9A-Za-z])")
# Mainland mobiles: optional +86 / 0086 / 86, then 3-4-4 digits, optionally split by single spaces or dashes,
# never part of a longer run of digits (timestamps, amounts, epoch seconds).
_MOBILE = r"(?<!\d)(?:(?:\+|00)?86[ -]?)?(?P<head>1[3-9]\d)[ -]?\d{4}[ -]?(?P<tail>\d{4})(?!\d)"
_ID_OR_MOBILE_IN_TEXT = re.compile(f"(?P<id>{_HEX_ID})|{_MOBILE}")
# Mainland fixed lines as voice contacts are written: E.164 (`+863552021234`, `+86 355 2021234`) or with the
# trunk 0 and a dash (`0355-2021234`). Bare digit runs are left alone: too many other numbers look like them.
_AREA = r"10|2\d|[3-9]\d{2}"
_FIXED_LINE_IN_TEXT = re.compile(
    rf"(?<![0-9A-Za-z+])(?:\+86[ -]?(?P<area>{_AREA})[ -]?|0(?P<dashed>{_AREA})-)\d{{5,6}}(?P<tail>\d{{2}})(?!\d)")
_FIXED_LINE_E164 = re.compile(rf"\+86(?P<area>{_AREA})\d{{5,6}}(?P<tail>\d{{2}})")

# Attributes every LogRecord has; anything else came in through `extra=` and is scrubbed too.
_RECORD_ATTRIBUTES = frozenset(vars(logging.makeLogRecord({}))) | {"message", "asctime"}


def mask_mobile(number: str) -> str:
    """`138****5678` for `+8613812345678`, `8613812345678`, `008613812345678` or `138 1234 5678`."""
    digits = re.sub(r"\D", "", number).removeprefix("00")
    if digits.startswith("86") and len(digits) == 13:
        digits = digits[2:]
    if len(digits) < 7:
        return "****"
    return f"{digits[:3]}****{digits[-4:]}"


def mask_phone(number: str) -> str:
    """A voice contact: a mobile as `mask_mobile` shows it; a fixed line (E.164) as `0355****34`, its area code
    and last two digits (a seven-digit local number keeps five digits hidden, as a mobile keeps four)."""
    fixed = _FIXED_LINE_E164.fullmatch(number.strip())
    if fixed is None:
        return mask_mobile(number)
    return f"0{fixed.group('area')}****{fixed.group('tail')}"


def mask_email(address: str) -> str:
    """`a***@x.gov.cn`: the first character of the mailbox and the whole domain."""
    local, _, domain = address.rpartition("@")
    if not domain or not local:
        return "***"
    return f"{local[:1]}***@{domain}"


def mask_openid(openid: str) -> str:
    """`****` and the last 4 characters."""
    return f"****{openid[-4:]}" if len(openid) > 4 else "****"


def mask_url(url: str) -> str:
    """`https://host/…`: paths, queries and credentials may carry tokens."""
    try:
        parts = urlsplit(url)
        host = parts.hostname
    except ValueError:
        return "****"
    if not parts.scheme or not host:
        return "****"
    if ":" in host:  # an IPv6 literal
        host = f"[{host}]"
    return f"{parts.scheme}://{host}/…"


def mask_contact(channel: str, value: str | None) -> str | None:
    """Mask a contact of the given channel kind; a kind this module does not know is hidden entirely."""
    if value is None:
        return None
    if channel == "sms":
        return mask_mobile(value)
    if channel == "voice":
        return mask_phone(value)
    if channel == "email":
        return mask_email(value)
    if channel == "wechat":
        return mask_openid(value)
    if channel == "webhook":
        return mask_url(value)
    return "****"


def mask_ip(address: str) -> str:
    """A client address as logs show it: an IPv4 address's first two octets (`203.0.x.x`), an IPv6 address's first
    three groups (`2001:db8:85a3:…`); anything else `****`. Enough to see a network, not a household."""
    try:
        ip = ipaddress.ip_address(address.strip())
    except ValueError:
        return "****"
    if ip.version == 4:
        return ".".join(str(ip).split(".")[:2]) + ".x.x"
    return ":".join(ip.exploded.split(":")[:3]) + ":…"


def mask_label(label: str) -> str:
    """An assisted person's label as admin views show it: the first character and `***` (a building number or a
    surname alone names no one; the rest may be a name, an address, a condition)."""
    text = label.strip()
    return f"{text[:1]}***" if text else "***"


def _mask_id_or_mobile(match: re.Match[str]) -> str:
    if match.group("id"):
        return match.group("id")
    return f"{match.group('head')}****{match.group('tail')}"


def _scrub_value(value: object) -> object:
    """Strings scrubbed, also inside the dicts, lists and tuples that JSON log formatters write out."""
    if isinstance(value, str):
        return scrub(value)
    if isinstance(value, dict):
        return {key: _scrub_value(item) for key, item in value.items()}
    if type(value) is list:
        return [_scrub_value(item) for item in value]
    if type(value) is tuple:  # exactly a tuple: a named tuple's constructor takes fields, not an iterable
        return tuple(_scrub_value(item) for item in value)
    return value


def scrub(text: str) -> str:
    """Mask every mobile and fixed-line number, email address and openid found in free text (the logging
    backstop)."""
    text = _EMAIL_IN_TEXT.sub(lambda m: f"{m.group('first')}***{m.group('at')}{m.group('domain')}", text)
    text = _OPENID_IN_TEXT.sub(lambda m: f"****{m.group('last')}", text)
    text = _FIXED_LINE_IN_TEXT.sub(lambda m: f"0{m.group('area') or m.group('dashed')}****{m.group('tail')}", text)
    return _ID_OR_MOBILE_IN_TEXT.sub(_mask_id_or_mobile, text)


class ScrubbingFilter(logging.Filter):
    """Rewrites a record so that no contact survives into any handler: message, traceback, stack, `extra=` text.

    The record is changed in place, so handlers that run after the one carrying this filter see it scrubbed too;
    attached to a logger (`logger.addFilter`), it scrubs before every handler.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
            formatted = True
        except Exception:  # a bad format string: the handler would print the raw args to stderr
            message, formatted = f"{record.msg} (log arguments could not be formatted)", False
        cleaned = scrub(message)
        if cleaned != message or not formatted:
            record.msg, record.args = cleaned, None
        self._scrub_exception(record)
        if record.stack_info:
            record.stack_info = scrub(record.stack_info)
        for key, value in vars(record).items():
            if key not in _RECORD_ATTRIBUTES:
                setattr(record, key, _scrub_value(value))
        return True

    @staticmethod
    def _scrub_exception(record: logging.LogRecord) -> None:
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if not record.exc_text:
            return
        cleaned = scrub(record.exc_text)
        if cleaned != record.exc_text:
            # Formatters render `exc_text` when set; dropping `exc_info` stops any that re-render the live
            # exception from printing the contact it carries.
            record.exc_text, record.exc_info = cleaned, None
