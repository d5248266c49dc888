"""JSON request bodies that differ between recipients in a few strings only (webhook, WeChat): the message's
document encoded once, each recipient's strings spliced into it.

A fan-out sends one document to every recipient but for an id, an address or a link; encoding the whole of it again
for each recipient was most of a body's cost (bench/RESULTS.md, eleventh and thirteenth rounds)."""

from __future__ import annotations

import json
import secrets
from collections.abc import Mapping, Sequence
from json.encoder import encode_basestring_ascii
from typing import Any


def slot() -> str:
    """A placeholder to stand where a recipient's string goes: unguessable, so publisher text never contains it."""
    return f"\x00{secrets.token_hex(16)}\x00"


def dumps(document: Mapping[str, Any]) -> bytes:
    """Compact UTF-8 JSON (values JSON cannot hold written as their `str`)."""
    return json.dumps(document, ensure_ascii=False, separators=(",", ":"), default=str).encode()


def split(encoded: bytes, slots: Sequence[str]) -> list[bytes]:
    """`encoded` cut where each of `slots` stands, in that order: the parts to join with each recipient's strings
    between them (`len(slots) + 1` parts). ValueError when a slot is missing or out of order."""
    parts: list[bytes] = []
    rest = encoded
    for placeholder in slots:
        head, found, rest = rest.partition(json.dumps(placeholder).encode())
        if not found:
            raise ValueError("a slot is missing from the encoded document, or out of order")
        parts.append(head)
    parts.append(rest)
    return parts


def string(value: str) -> bytes:
    """What json.dumps(value) writes for a str, by the json module's own C encoder without the dumps machinery
    around it (several strings a request)."""
    return encode_basestring_ascii(value).encode()
