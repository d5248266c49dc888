"""What the access log may say: every request line, referrer and `extra=` field goes through one redaction before
any handler sees it. Tokens in links are credentials — `/manage/<token>`, `/unsubscribe/<token>`,
`/subscribe/confirm/<token>`, `/assist/<token>`, `/assist/confirm/<token>`, and `?token=<receipt_token>` on the
provider callbacks — so they become `…`; contacts (WeChat pushes `?openid=…`) are masked by the shared
`ScrubbingFilter`. Both filters sit on the `aiohttp.access` logger itself, so whatever handler a deployment
attaches (and the JSON formatter, which writes `extra=` fields) only ever gets the redacted record.
"""

from __future__ import annotations

import logging
import re
from typing import Any

from subscriptions.masking import ScrubbingFilter

ACCESS_LOGGER = "aiohttp.access"
HIDDEN = "…"
# A token is the path segment after one of these prefixes (up to the next /, ?, #, quote or space).
_TOKEN_IN_PATH = re.compile(r"/(manage|unsubscribe|subscribe/confirm|assist/confirm|assist)/[^\s/?#\"']+")
_TOKEN_IN_QUERY = re.compile(r"([?&;]token=)[^&;#\s\"']*", re.IGNORECASE)


def redact(text: str) -> str:
    """`text` with the tokens of links and of `?token=` replaced by `…`."""
    if "/" not in text and "token" not in text.lower():
        return text
    return _TOKEN_IN_QUERY.sub(rf"\1{HIDDEN}", _TOKEN_IN_PATH.sub(rf"/\1/{HIDDEN}", text))


def _redacted(value: Any) -> Any:
    if isinstance(value, str):
        return redact(value)
    if isinstance(value, dict):  # aiohttp's `extra`: {"request_header": {"Referer": …}}
        return {key: _redacted(item) for key, item in value.items()}
    return value


class RedactTokens(logging.Filter):
    """Rewrites a record's message and `extra=` values (nested ones too) through `redact`."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        cleaned = redact(message)
        if cleaned != message:
            record.msg, record.args = cleaned, None
        for key, value in list(vars(record).items()):
            if key not in ("msg", "args") and isinstance(value, str | dict):
                setattr(record, key, _redacted(value))
        return True


def protect_access_log() -> None:
    """Put the redaction and the contact scrubbing on the access logger (once, however many apps are made)."""
    access = logging.getLogger(ACCESS_LOGGER)
    for kind in (RedactTokens, ScrubbingFilter):
        if not any(isinstance(f, kind) for f in access.filters):
            access.addFilter(kind())
