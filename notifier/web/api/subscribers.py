"""Subscriber routes (admin): create, list, read, change, delete, add a subscription. Contacts are always shown
masked; a generated webhook secret is shown once, in the answer that created it.

Handlers are thin: read and validate the input, call one core function, format the answer.
"""

from __future__ import annotations

from aiohttp import web

from notifier.audit import Actor
from notifier.errors import NotFoundError
from notifier.models import Page, Role
from notifier.service import webhook_allows_private
from notifier.subscribers import (
    add_assisted,
    add_subscription,
    assisted_view,
    create_subscriber,
    subscriber_view,
    update_subscriber,
)
from notifier.web.auth import key_with_role
from notifier.web.openapi import operation
from notifier.web.paging import PageQuery, encode_cursor, time_cursor
from notifier.web.problems import json_response, parse_body, parse_query, read_json
from notifier.web.state import SERVICE
from subscriptions.models import (
    AssistedList,
    AssistsIn,
    Subscriber,
    SubscriberIn,
    SubscriberPatch,
    Subscription,
    SubscriptionIn,
)

routes = web.RouteTableDef()

ADMIN = (Role.ADMIN,)


@routes.post("/v1/subscribers")
@operation("Create a subscriber", "subscribers", {201: ("the subscriber, contacts masked", Subscriber)},
           roles=ADMIN, body=SubscriberIn,
           description="A webhook contact without a secret gets one generated, returned once as "
                       "contacts.webhook_secret. Webhook URLs pointing to private networks are refused (422) "
                       "unless the deployment allows them. Region, groups and topics may be given by code or by "
                       "catalogue name (`城区`, `老年人`), as in bulk import; codes are stored. Every problem of "
                       "the body is listed in one 422 answer.")
async def create(request: web.Request) -> web.StreamResponse:
    await key_with_role(request, *ADMIN)
    data = await read_json(request)  # checked in one pass by create_subscriber, names → codes
    service = request.app[SERVICE]
    record, secret = await create_subscriber(service.store, data,
                                             allow_private_webhooks=webhook_allows_private(service.settings))
    return json_response(subscriber_view(record, secret), status=201,
                         headers={"Location": f"/v1/subscribers/{record.id}"})


@routes.get("/v1/subscribers")
@operation("List subscribers (contacts masked)", "subscribers", {200: ("a page of subscribers", Page[Subscriber])},
           roles=ADMIN, query=PageQuery)
async def list_subscribers(request: web.Request) -> web.StreamResponse:
    await key_with_role(request, *ADMIN)
    query = parse_query(request, PageQuery)
    # One more than asked tells whether another page exists, so the last page has no next_cursor.
    rows, total = await request.app[SERVICE].store.list_subscribers(query.limit + 1, time_cursor(query.cursor))
    shown = rows[:query.limit]
    cursor = encode_cursor(shown[-1].created_at, shown[-1].id) if len(rows) > query.limit else None
    return json_response(Page[Subscriber](items=[subscriber_view(r) for r in shown], next_cursor=cursor,
                                          total=total))


@routes.get("/v1/subscribers/{id}")
@operation("One subscriber (contacts masked)", "subscribers", {200: ("the subscriber", Subscriber)}, roles=ADMIN,
           errors=(404,))
async def get(request: web.Request) -> web.StreamResponse:
    await key_with_role(request, *ADMIN)
    record = await request.app[SERVICE].store.get_subscriber(request.match_info["id"])
    if record is None:
        raise NotFoundError("no such subscriber")
    return json_response(subscriber_view(record))


@routes.patch("/v1/subscribers/{id}")
@operation("Change a subscriber", "subscribers", {200: ("the changed subscriber", Subscriber)}, roles=ADMIN,
           body=SubscriberPatch, errors=(404,),
           description="Given contacts replace all contacts; `clear_quiet_hours` removes quiet hours.")
async def patch(request: web.Request) -> web.StreamResponse:
    await key_with_role(request, *ADMIN)
    body = await parse_body(request, SubscriberPatch)
    service = request.app[SERVICE]
    record, secret = await update_subscriber(service.store, request.match_info["id"], body,
                                             allow_private_webhooks=webhook_allows_private(service.settings))
    return json_response(subscriber_view(record, secret))


@routes.delete("/v1/subscribers/{id}")
@operation("Delete a subscriber and every contact", "subscribers", {204: ("deleted", None)}, roles=ADMIN,
           errors=(404,), description="Pending deliveries to the subscriber are cancelled.")
async def delete(request: web.Request) -> web.StreamResponse:
    key = await key_with_role(request, *ADMIN)
    if not await request.app[SERVICE].store.delete_subscriber(request.match_info["id"], Actor.of_key(key)):
        raise NotFoundError("no such subscriber")
    return web.Response(status=204)


@routes.post("/v1/subscribers/{id}/subscriptions")
@operation("Subscribe to a topic", "subscribers", {201: ("the subscription", Subscription)}, roles=ADMIN,
           body=SubscriptionIn, errors=(404,),
           description="Subscribing again to the same topic replaces its channels and minimum severity.")
async def subscribe(request: web.Request) -> web.StreamResponse:
    await key_with_role(request, *ADMIN)
    body = await parse_body(request, SubscriptionIn)
    subscription = await add_subscription(request.app[SERVICE].store, request.match_info["id"], body)
    return json_response(subscription, status=201)


# ---- assisted reach: a proxy's people


@routes.post("/v1/subscribers/{id}/assists")
@operation("Add people to a proxy's list", "subscribers", {201: ("the people added, labels masked", AssistedList)},
           roles=ADMIN, body=AssistsIn, errors=(404,),
           description="The subscriber must have `\"role\": \"proxy\"`. Each person is numbered after the proxy's "
                       "last (numbers are never reused; an SMS reply of a number confirms that person told).")
async def add_people(request: web.Request) -> web.StreamResponse:
    await key_with_role(request, *ADMIN)
    body = await parse_body(request, AssistsIn)
    added = await add_assisted(request.app[SERVICE].store, request.match_info["id"], body.assists)
    return json_response(AssistedList(assists=[assisted_view(p) for p in added]), status=201)


@routes.delete("/v1/subscribers/{id}/assists/{assisted_id}")
@operation("Erase one person from a proxy's list", "subscribers", {204: ("erased", None)}, roles=ADMIN,
           errors=(404,), description="The label and groups are deleted; the person's pending deliveries are "
                                      "cancelled; past coverage keeps its counts.")
async def remove_person(request: web.Request) -> web.StreamResponse:
    await key_with_role(request, *ADMIN)
    store = request.app[SERVICE].store
    if not await store.remove_assisted(request.match_info["id"], request.match_info["assisted_id"]):
        raise NotFoundError("the proxy has no such person")
    return web.Response(status=204)
