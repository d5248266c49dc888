"""Paged listings: `?limit=&cursor=` in, `{"items", "next_cursor", "total"}` out. Cursors are opaque to clients
(url-safe base64 of the sort key of the last item shown) so that the sort key can change without breaking them."""

from __future__ import annotations

import base64
import binascii
import json
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from notifier.errors import FieldError, InvalidInput
from notifier.models import DeliveryStatus

MAX_LIMIT = 1000


class PageQuery(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    limit: int = Field(default=100, ge=1, le=MAX_LIMIT, description="items per page")
    cursor: str | None = Field(default=None, max_length=500, description="next_cursor of the previous page")


class DeliveryQuery(PageQuery):
    status: DeliveryStatus | None = Field(default=None, description="only deliveries in this status")
    channel: str | None = Field(default=None, pattern=r"^[a-z][a-z0-9_-]{0,31}$",
                                description="only deliveries on this channel kind")


def encode_cursor(*key: Any) -> str:
    return base64.urlsafe_b64encode(json.dumps(list(key)).encode()).decode().rstrip("=")


def _decode(cursor: str) -> Any:
    try:
        return json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
    except (binascii.Error, ValueError):
        return None


def _bad_cursor() -> InvalidInput:
    return InvalidInput("the query is not valid", [FieldError("cursor", "not a cursor returned by this listing")])


def time_cursor(cursor: str | None) -> tuple[float, str] | None:
    """A (created_at, id) cursor of the alert and subscriber listings."""
    if cursor is None:
        return None
    key = _decode(cursor)
    if (not isinstance(key, list) or len(key) != 2 or not isinstance(key[0], int | float)
            or isinstance(key[0], bool) or not isinstance(key[1], str)):
        raise _bad_cursor()
    return float(key[0]), key[1]


def id_cursor(cursor: str | None) -> str | None:
    """An id cursor (the delivery listing is ordered by id)."""
    if cursor is None:
        return None
    key = _decode(cursor)
    if not isinstance(key, list) or len(key) != 1 or not isinstance(key[0], str):
        raise _bad_cursor()
    return key[0]


def seq_cursor(cursor: str | None) -> int | None:
    """A sequence-number cursor (the audit log is listed in seq order)."""
    if cursor is None:
        return None
    key = _decode(cursor)
    if not isinstance(key, list) or len(key) != 1 or not isinstance(key[0], int) or isinstance(key[0], bool):
        raise _bad_cursor()
    return key[0]
