"""Who is calling: the API key of a request (`Authorization: Bearer <key>`), checked against the store."""

from __future__ import annotations

from aiohttp import web

from notifier.keys import Publishing, authenticate, presented, publishing, require_role
from notifier.models import Role
from notifier.store.records import KeyRecord
from notifier.web.state import SERVICE

CALLER = web.RequestKey("caller", KeyRecord)  # the authenticated key, looked up once per request
RELEASING = (Role.ADMIN, Role.PUBLISHER)  # the roles that may release life-safety work (publish, cancel, approve)


async def key_of(request: web.Request) -> KeyRecord:
    """The caller's key; Unauthorized (401 problem with `WWW-Authenticate: Bearer`) when missing, unknown or
    revoked."""
    if CALLER in request:
        return request[CALLER]
    key = await authenticate(request.app[SERVICE].store, request.headers.get("Authorization"))
    request[CALLER] = key
    return key


async def publishing_key(request: web.Request, *, known: bool = True) -> Publishing:
    """`releasing_key`'s key, and the catalogue's codes the alert is checked against: as this process last found
    them for the same key (`KnownKeys`; vouched: the publish's transaction confirms them), or unless `known`, read
    together (`keys.publishing`): either way, no turn of a busy event loop or one, not two, before the write."""
    service = request.app[SERVICE]
    key_hash = presented(request.headers.get("Authorization"))  # no key at all never opens the window
    if known and (found := service.known_keys.get(key_hash)) is not None:
        request[CALLER] = found.key
        return found
    with service.dispatcher.window.tentatively():  # a key refused here, or its role, pauses tentative holds
        key, rows = await publishing(service.store, key_hash)
        request[CALLER] = key
        require_role(key, *RELEASING)
    return service.known_keys.remember(key_hash, key, rows)


def viewer_k(request: web.Request, key: KeyRecord) -> int | None:
    """k for a viewer's key (figures of fewer people are hidden: `notifier.disclosure_control`), None otherwise."""
    return request.app[SERVICE].settings.auth.viewer_min_cell if key.role == Role.VIEWER else None


async def releasing_key(request: web.Request) -> KeyRecord:
    """The admin's or publisher's key of a request that may release life-safety work (publish, cancel, approve),
    checked with this process's life-safety window held tentatively (`notifier.life_safety`): the routine requests
    in flight finish during the check instead of after it. The caller holds the window while it stores."""
    with request.app[SERVICE].dispatcher.window.tentatively():
        return await key_with_role(request, *RELEASING)


async def key_with_role(request: web.Request, *roles: Role) -> KeyRecord:
    """The caller's key, which must hold one of `roles` (403 otherwise)."""
    key = await key_of(request)
    require_role(key, *roles)
    return key
