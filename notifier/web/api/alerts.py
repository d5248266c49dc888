"""Alert routes: publish (idempotent), list, read, cancel, coverage, deliveries. A publisher sees only its own
department's alerts: another department's answer 404 (`notifier.departments`).

Handlers are thin: read and validate the input, call one core function, format the answer.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from aiohttp import web
from pydantic import BaseModel, ConfigDict

from notifier.cap import CAP_MEDIA_TYPE
from notifier.coverage import alert_coverage
from notifier.departments import listing_department, readable
from notifier.disclosure_control import alert_withheld
from notifier.errors import FieldError, InvalidInput, NotifierError
from notifier.input_rules import CatalogueCodes
from notifier.interchange import cap_document, read_cap
from notifier.keys import Publishing, require_publish
from notifier.models import Alert, AlertAccepted, AlertIn, AlertStatus, Coverage, Delivery, DeliveryStatus, Page, Role
from notifier.publish import alert_view, cancel_alert, check_alert, publish_alert
from notifier.store.catalogue import Unvouched
from notifier.store.records import AlertRow, DeliveryRow, KeyRecord
from notifier.web.api import csv_export
from notifier.web.api.csv_export import CSV_TYPE, DeliveryListQuery, FormatQuery, wants_csv
from notifier.web.auth import key_of, key_with_role, publishing_key, releasing_key, viewer_k
from notifier.web.openapi import operation
from notifier.web.paging import PageQuery, encode_cursor, id_cursor, time_cursor
from notifier.web.problems import json_response, parse_query, read_json
from notifier.web.state import SERVICE
from subscriptions.masking import mask_contact, scrub

routes = web.RouteTableDef()

IDEMPOTENCY_HEADER = "Idempotency-Key"
IDEMPOTENCY_PARAM = {"name": IDEMPOTENCY_HEADER, "in": "header", "required": False, "schema": {"type": "string"},
                     "description": "sets the alert's idempotency_key; must equal it when the body gives one too"}


class CancelResult(BaseModel):
    model_config = ConfigDict(frozen=True)

    id: str
    status: AlertStatus
    cancelled_deliveries: int
    notice_id: str | None


async def _alert_body(request: web.Request, key: KeyRecord, codes: CatalogueCodes) -> AlertIn:
    """The alert of the body, with the Idempotency-Key header folded in (the header is the HTTP-native way)."""
    data = await read_json(request)
    header = request.headers.get(IDEMPOTENCY_HEADER)
    if header is not None and isinstance(data, dict):
        given = data.get("idempotency_key")
        if given is not None and given != header:
            raise InvalidInput("the Idempotency-Key header and the body's idempotency_key differ",
                               [FieldError("idempotency_key", "differs from the Idempotency-Key header")])
        data = {**data, "idempotency_key": header}
    return await check_alert(request.app[SERVICE].store, data, key, codes)  # every problem at once, names → codes


async def readable_alert(request: web.Request, key: KeyRecord) -> AlertRow:
    """The alert of the path, if the key may read it (404 for another department's, as for none)."""
    return readable(key, await request.app[SERVICE].store.get_alert(request.match_info["id"]))


def alert_for(row: AlertRow, k: int | None) -> Alert:
    """The alert as a key may see it: for a viewer, no `targeted` when fewer than k were targeted."""
    view = alert_view(row)
    if alert_withheld(row.targeted, k):
        return view.model_copy(update={"targeted": None, "suppressed": True})
    return view


@routes.post("/v1/alerts")
@operation("Publish an alert", "alerts",
           {202: ("a new alert; its deliveries are queued (or it waits for approval: status "
                  "pending_approval, targeted what it would have now)", AlertAccepted),
            200: ("a repeat of an earlier request with the same idempotency key", AlertAccepted)},
           roles=(Role.ADMIN, Role.PUBLISHER), body=AlertIn, errors=(400, 409, 413),
           body_media_types=(CAP_MEDIA_TYPE,),
           description="A publisher may publish only to topics matching its patterns; the alert records its "
                       "department (an admin key's: the topic's). The same idempotency key in the same department "
                       "with the same body returns the first alert (200); with another body, 409. An alert "
                       "matching the [approval] rules is answered with status pending_approval and sends nothing "
                       "until POST /v1/alerts/{id}/approve. With `Content-Type: application/cap+xml` the body is a "
                       "CAP 1.2 document (README: CAP 1.2): 400 for XML that is not well-formed or carries any DTD, "
                       "422 for one that breaks CAP or the catalogue; the same sender + identifier again returns "
                       "the same alert; an Exercise or Test is recorded with status `exercise`, targeted 0, and sent "
                       "to no one.",
           extra={"headers": [IDEMPOTENCY_PARAM]})
async def publish(request: web.Request) -> web.StreamResponse:
    caller = await publishing_key(request)
    body = await request.read()  # outside the window: a slow upload must not hold back routine sending
    try:
        row, created = await _publish(request, body, caller)
    except (Unvouched, NotifierError):
        if caller.vouched is None:
            raise
        # Refused on what this process knew of the key and the catalogue (a topic added since, say), or they have
        # changed (`Unvouched`): the request is checked again against what the store holds now, and answered so.
        request.app[SERVICE].known_keys.forget(caller.vouched.key_hash)
        row, created = await _publish(request, body, await publishing_key(request, known=False))
    accepted = AlertAccepted(id=row.id, targeted=row.targeted, status=AlertStatus(row.status))
    return json_response(accepted, status=202 if created else 200, headers={"Location": f"/v1/alerts/{row.id}"})


async def _publish(request: web.Request, body: bytes, caller: Publishing) -> tuple[AlertRow, bool]:
    """Check and store the alert of `body` for `caller` (`publish_alert`): (the alert, whether it is new)."""
    service = request.app[SERVICE]
    key, codes = caller.key, caller.codes
    # Publishing takes this process's event loop first: no routine send starts while the alert is stored, and a
    # life-safety one's window is handed to the claim loop (notifier.life_safety).
    with service.dispatcher.window.held():
        cap = await read_cap(service.store, body) if request.content_type == CAP_MEDIA_TYPE else None
        alert = cap.alert if cap is not None else await _alert_body(request, key, codes)
        require_publish(key, alert.topic)
        row, created = await publish_alert(service.store, alert, key, cap=cap, approval=service.settings.approval,
                                           codes=codes, vouched=caller.vouched)
        if created:
            service.dispatcher.wake(row)
    return row, created


@routes.get("/v1/alerts")
@operation("List alerts, newest first", "alerts", {200: ("a page of alerts", Page[Alert])},
           roles=(Role.ADMIN, Role.VIEWER, Role.PUBLISHER), query=PageQuery,
           description="A publisher key lists its own department's alerts only.")
async def list_alerts(request: web.Request) -> web.StreamResponse:
    key = await key_with_role(request, Role.ADMIN, Role.VIEWER, Role.PUBLISHER)
    query = parse_query(request, PageQuery)
    # One more than asked tells whether another page exists, so the last page has no next_cursor.
    rows, total = await request.app[SERVICE].store.list_alerts(query.limit + 1, time_cursor(query.cursor),
                                                               department=listing_department(key))
    shown = rows[:query.limit]
    cursor = encode_cursor(shown[-1].created_at, shown[-1].id) if len(rows) > query.limit else None
    k = viewer_k(request, key)
    return json_response(Page[Alert](items=[alert_for(r, k) for r in shown], next_cursor=cursor, total=total))


@routes.get("/v1/alerts/{id}")
@operation("One alert", "alerts", {200: ("the alert", Alert)}, errors=(404,),
           description="A publisher key reads its own department's alerts only (404 for another's). For a "
                       "viewer, an alert with fewer than k targeted shows `targeted: null` and `suppressed: true`.")
async def get_alert(request: web.Request) -> web.StreamResponse:
    key = await key_of(request)
    return json_response(alert_for(await readable_alert(request, key), viewer_k(request, key)))


@routes.post("/v1/alerts/{id}/cancel")
@operation("Cancel an alert", "alerts", {200: ("the alert is cancelled", CancelResult)},
           roles=(Role.ADMIN, Role.PUBLISHER), errors=(404,),
           description="Stops pending deliveries; those who already received the alert get a cancel notice.")
async def cancel(request: web.Request) -> web.StreamResponse:
    key = await releasing_key(request)
    service = request.app[SERVICE]
    with service.dispatcher.window.held():  # as a publish: its cancel notice is life-safety work
        row = await readable_alert(request, key)
        require_publish(key, row.topic)
        cancelled, stopped, notice = await cancel_alert(service.store, row.id, key)
        if notice is not None:
            service.dispatcher.wake(notice)
    return json_response(CancelResult(id=cancelled.id, status=AlertStatus(cancelled.status),
                                      cancelled_deliveries=stopped, notice_id=notice.id if notice else None))


@routes.get("/v1/alerts/{id}/coverage")
@operation("Coverage of an alert", "alerts", {200: ("who of those targeted was reached", Coverage)}, errors=(404,),
           description="For viewer keys (threshold k, `[auth] viewer_min_cell`): an alert with fewer than k "
                       "targeted shows `suppressed: true` and no figure; otherwise districts, groups and cells "
                       "with fewer than k targeted — and as many others as it takes for none of them to be "
                       "worked out from the rest — carry `suppressed: true` and null counts (docs/privacy.md). "
                       "With ?format=csv: the region × group cells.",
           query=FormatQuery, alt_media_types=(CSV_TYPE,))
async def coverage(request: web.Request) -> web.StreamResponse:
    key = await key_of(request)
    parse_query(request, FormatQuery)
    row = await readable_alert(request, key)
    result = await alert_coverage(request.app[SERVICE].store, row.id, suppress_below=viewer_k(request, key))
    if wants_csv(request):
        return await csv_export.coverage_csv(request.app[SERVICE].store, result)
    return json_response(result)


def _dt(value: float | None) -> datetime | None:
    return None if value is None else datetime.fromtimestamp(value, UTC)


def delivery_view(row: DeliveryRow) -> Delivery:
    """A delivery as the API shows it: the contact masked, and any contact in the provider's error text too."""
    times: dict[str, Any] = {name: _dt(getattr(row, name))
                             for name in ("next_attempt_at", "sent_at", "delivered_at", "finished_at")}
    return Delivery(
        id=row.id, alert_id=row.alert_id, subscriber_id=row.subscriber_id, channel=row.channel,
        contact=mask_contact(row.channel, row.address), status=DeliveryStatus(row.status), attempts=row.attempts,
        provider_message_id=row.provider_message_id, last_error=scrub(row.last_error) if row.last_error else None,
        created_at=datetime.fromtimestamp(row.created_at, UTC), **times)


@routes.get("/v1/alerts/{id}/deliveries")
@operation("Deliveries of an alert (contacts masked)", "alerts", {200: ("a page of deliveries", Page[Delivery])},
           roles=(Role.ADMIN, Role.PUBLISHER), query=DeliveryListQuery, errors=(404,), alt_media_types=(CSV_TYPE,),
           description="With ?format=csv: every delivery matching status and channel (limit and cursor unused). "
                       "A publisher key reads its own department's alerts' deliveries only. Viewers get aggregates "
                       "only: 403 in every format.")
async def deliveries(request: web.Request) -> web.StreamResponse:
    key = await key_with_role(request, Role.ADMIN, Role.PUBLISHER)
    query = parse_query(request, DeliveryListQuery)
    row = await readable_alert(request, key)
    if wants_csv(request):
        return await csv_export.deliveries_csv(request, request.app[SERVICE].store, row.id, query)
    rows, total = await request.app[SERVICE].store.list_deliveries(
        row.id, query.limit + 1, id_cursor(query.cursor), query.status.value if query.status else None,
        query.channel)
    shown = rows[:query.limit]
    cursor = encode_cursor(shown[-1].id) if len(rows) > query.limit else None
    return json_response(Page[Delivery](items=[delivery_view(r) for r in shown], next_cursor=cursor, total=total))


# ---------------------------------------------------------------- CAP 1.2


CAP_CONTENT_TYPE = f"{CAP_MEDIA_TYPE}; charset=utf-8"


@routes.get("/v1/alerts/{id}/cap")
@operation("An alert as a CAP 1.2 document", "alerts", {200: ("the alert in CAP 1.2, valid against the OASIS schema",
                                                               None)},
           errors=(404,), media_type=CAP_MEDIA_TYPE,
           description="Every alert, public or not, exercises included: `identifier` is the GB/T 35965.1 form where "
                       "`[cap] sender_code` is configured (else the alert's id), an imported alert keeps its own "
                       "sender, identifier and sent time; an update or cancel names what it refers to. A publisher "
                       "key reads its own department's alerts only (404 for another's).")
async def alert_cap(request: web.Request) -> web.StreamResponse:
    key = await key_of(request)
    row = await readable_alert(request, key)  # a publisher: its own department's alerts only
    service = request.app[SERVICE]
    page = service.renderer.disclosure_url(row.id) if row.public else None
    body = await cap_document(service.store, service.catalogue, row, page_url=page)
    return web.Response(body=body, headers={"Content-Type": CAP_CONTENT_TYPE})
