"""The one way personal data is shown: masked. Used by logs, admin/API views and exports.

Mobile `13812345678` → `138****5678`; email `alice@x.gov.cn` → `a***@x.gov.cn`; openid → `****` + last 4;
webhook URL → scheme://host/… (paths and queries may carry tokens).
"""

from __future__ import annotations

import logging
import re
from urllib.parse import urlsplit

_MOBILE_IN_TEXT = re.compile(r"(?<!\d)(?:\+?86[- ]?)?(1[3-9]\d)\d{4}(\d{4})(?!\d)")
_EMAIL_IN_TEXT = re.compile(r"([A-Za-z0-9._%+-])[A-Za-z0-9._%+-]*@([A-Za-z0-9.-]+\.[A-Za-z]{2,})")
# WeChat openids: 28 characters of [A-Za-z0-9_-], starting with "o" for official accounts.
_OPENID_IN_TEXT = re.compile(r"(?<![A-Za-z0-9_-])o[A-Za-z0-9_-]{23}([A-Za-z0-9_-]{4})(?![A-Za-z0-9_-])")


def mask_mobile(number: str) -> str:
    digits = re.sub(r"\D", "", number)
    if digits.startswith("86") and len(digits) == 13:
        digits = digits[2:]
    if len(digits) < 7:
        return "****"
    return f"{digits[:3]}****{digits[-4:]}"


def mask_email(address: str) -> str:
    local, _, domain = address.partition("@")
    if not domain:
        return "***"
    return f"{local[:1]}***@{domain}"


def mask_openid(openid: str) -> str:
    return f"****{openid[-4:]}" if len(openid) > 4 else "****"


def mask_url(url: str) -> str:
    parts = urlsplit(url)
    if not parts.scheme or not parts.hostname:
        return "****"
    return f"{parts.scheme}://{parts.hostname}/…"


def mask_contact(channel: str, value: str | None) -> str | None:
    """Mask a contact of the given channel kind; unknown kinds show only their length class."""
    if value is None:
        return None
    if channel == "sms":
        return mask_mobile(value)
    if channel == "email":
        return mask_email(value)
    if channel == "wechat":
        return mask_openid(value)
    if channel == "webhook":
        return mask_url(value)
    return "****"


def scrub(text: str) -> str:
    """Mask every mobile number, email address and openid found in free text (the logging backstop)."""
    text = _MOBILE_IN_TEXT.sub(lambda m: f"{m.group(1)}****{m.group(2)}", text)
    text = _EMAIL_IN_TEXT.sub(lambda m: f"{m.group(1)}***@{m.group(2)}", text)
    return _OPENID_IN_TEXT.sub(lambda m: f"****{m.group(1)}", text)


class ScrubbingFilter(logging.Filter):
    """Rewrites a record's final message so that no contact survives into any handler."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        cleaned = scrub(message)
        if cleaned != message:
            record.msg, record.args = cleaned, None
        return True
