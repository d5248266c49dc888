"""The audit chain over HTTP (SPEC "Audit"): `GET /v1/audit` (admin; filtered, paged in seq order) and
`GET /audit/head` (public, no key: the head to witness outside). The chain itself is `notifier.audit`.

Handlers are thin: read and validate the input, call one core function, format the answer.
"""

from __future__ import annotations

from typing import Any

from aiohttp import web
from pydantic import BaseModel, ConfigDict, Field, JsonValue, field_validator

from notifier.audit import AuditAction, time_bound
from notifier.models import Page, Role
from notifier.store.audit_log import AuditFilter
from notifier.web.auth import key_with_role
from notifier.web.openapi import operation
from notifier.web.paging import PageQuery, encode_cursor, seq_cursor
from notifier.web.problems import json_response, parse_query
from notifier.web.state import SERVICE

routes = web.RouteTableDef()


class AuditQuery(PageQuery):
    since: str | None = Field(default=None, max_length=40, description="entries at or after this time (ISO 8601 "
                                                                       "with an offset, or a date: Beijing midnight)")
    until: str | None = Field(default=None, max_length=40, description="entries before this time")
    department: str | None = Field(default=None, min_length=1, max_length=200,
                                   description="the acting key's department")
    action: AuditAction | None = Field(default=None, description="one kind of act, e.g. alert.approve")

    @field_validator("since", "until")
    @classmethod
    def _time(cls, value: str | None) -> str | None:
        return None if value is None else time_bound(value)  # AuditError is a ValueError: a 422 on the field


class AuditEntryOut(BaseModel):
    """One entry exactly as stored; `hash` = SHA-256 hex of the other fields as canonical JSON."""

    model_config = ConfigDict(frozen=True)

    seq: int
    at: str
    actor: str = Field(description="the key's id, `cli`, `system` or `citizen`")
    role: str
    department: str | None
    action: str
    object: str = Field(description="<kind>:<id>, e.g. alert:3f…")
    details: JsonValue
    prev_hash: str
    hash: str


class AuditHeadOut(BaseModel):
    model_config = ConfigDict(frozen=True)

    seq: int = Field(description="the last entry's seq; 0 before the first entry")
    hash: str = Field(description="its hash; 64 zeros before the first entry")
    at: str | None


@routes.get("/v1/audit")
@operation("The audit log, oldest first", "audit", {200: ("a page of entries", Page[AuditEntryOut])},
           roles=(Role.ADMIN,), query=AuditQuery,
           description="Every publish, approval, rejection, update, cancel, key and topic change, population "
                       "upload, import and erasure, as hash-chained entries (`notifier audit verify` checks the "
                       "chain). Filters: `since` ≤ at < `until`, the acting key's `department`, one `action`.")
async def audit_entries(request: web.Request) -> web.StreamResponse:
    await key_with_role(request, Role.ADMIN)
    query = parse_query(request, AuditQuery)
    where = AuditFilter(since=query.since, until=query.until, department=query.department,
                        action=query.action.value if query.action else None)
    rows, total = await request.app[SERVICE].store.audit_page(where, query.limit + 1, seq_cursor(query.cursor))
    shown: list[dict[str, Any]] = rows[:query.limit]
    cursor = encode_cursor(shown[-1]["seq"]) if len(rows) > query.limit else None
    return json_response(Page[AuditEntryOut](items=[AuditEntryOut.model_validate(r) for r in shown],
                                             next_cursor=cursor, total=total))


@routes.get("/audit/head")
@operation("The audit chain's head, to witness outside", "audit", {200: ("{seq, hash, at}", AuditHeadOut)},
           auth=False,
           description="No key needed: anyone may record the head from time to time; `notifier audit verify` "
                       "then proves nothing before it was changed, removed or reordered.")
async def audit_head(request: web.Request) -> web.StreamResponse:
    head = await request.app[SERVICE].store.audit_head()
    return json_response(AuditHeadOut(seq=head.seq, hash=head.hash, at=head.at),
                         headers={"Cache-Control": "no-store"})
