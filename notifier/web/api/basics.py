"""Service routes and catalogue reads: health, metrics, topics, regions, groups.

Handlers are thin: read and validate the input, call one core function, format the answer.
"""

from __future__ import annotations

import logging
from typing import Any

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST
from pydantic import BaseModel, ConfigDict

from notifier.errors import NotFoundError
from notifier.models import Group, Region, Role, Topic, TopicIn, TopicPatch
from notifier.schedule import from_stored
from notifier.web.auth import key_of, key_with_role
from notifier.web.openapi import operation
from notifier.web.problems import json_response, parse_body, problem_response
from notifier.web.state import METRICS, SERVICE

log = logging.getLogger("notifier.web")
routes = web.RouteTableDef()


class Health(BaseModel):
    model_config = ConfigDict(frozen=True)

    status: str


class TopicList(BaseModel):
    model_config = ConfigDict(frozen=True)

    items: list[Topic]


class RegionList(BaseModel):
    model_config = ConfigDict(frozen=True)

    items: list[Region]


class GroupList(BaseModel):
    model_config = ConfigDict(frozen=True)

    items: list[Group]


@routes.get("/healthz")
@operation("Liveness and store check", "meta", {200: ("the store answers", Health)}, auth=False, errors=(503,))
async def healthz(request: web.Request) -> web.StreamResponse:
    try:
        await request.app[SERVICE].store.get_meta("schema_version")
    except Exception:  # any failure of the store means "not healthy"; the cause goes to the log
        log.exception("health check: the store does not answer")
        return problem_response(503, "Service unavailable", "the store does not answer")
    return json_response(Health(status="ok"))


@routes.get("/metrics")
@operation("Prometheus metrics", "meta", {200: ("Prometheus text exposition", None)}, auth=False,
           media_type="text/plain")
async def metrics(request: web.Request) -> web.StreamResponse:
    body = await request.app[METRICS].render(request.app[SERVICE].store)
    # CONTENT_TYPE_LATEST carries its own version and charset parameters; aiohttp wants them in the header.
    return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})


# ---------------------------------------------------------------- topics


def _topic(row: dict[str, Any]) -> Topic:
    """A stored topic as the API shows it: a structured schedule as its object, free text as written."""
    stored = from_stored(row.get("schedule"))
    data = {k: v for k, v in row.items() if k in Topic.model_fields}
    return Topic.model_validate({**data, "schedule": stored.schedule or stored.text})


@routes.get("/v1/topics")
@operation("List topics", "catalogue", {200: ("every topic", TopicList)})
async def list_topics(request: web.Request) -> web.StreamResponse:
    await key_of(request)
    rows = await request.app[SERVICE].store.list_topics()
    return json_response(TopicList(items=[_topic(r) for r in rows]))


@routes.get("/v1/topics/{key}")
@operation("One topic", "catalogue", {200: ("the topic", Topic)}, errors=(404,))
async def get_topic(request: web.Request) -> web.StreamResponse:
    await key_of(request)
    row = await request.app[SERVICE].store.get_topic(request.match_info["key"])
    if row is None:
        raise NotFoundError("no such topic")
    return json_response(_topic(row))


@routes.post("/v1/topics")
@operation("Create a topic", "catalogue", {201: ("the new topic", Topic)}, roles=(Role.ADMIN,), body=TopicIn,
           errors=(409,), description="409 when the key exists; 422 for an unknown domain. `schedule` may be a "
                                      'deadline as data ({"every": "month", "by_day": 20}, see '
                                      "GET /v1/catalogue/compliance) or free text.")
async def create_topic(request: web.Request) -> web.StreamResponse:
    await key_with_role(request, Role.ADMIN)
    body = await parse_body(request, TopicIn)
    store = request.app[SERVICE].store
    await store.create_topic(body.model_dump())  # Conflict / NotFound(domain) become 409 / 422 in the middleware
    row = await store.get_topic(body.key)
    assert row is not None  # noqa: S101 - written a moment ago in this process
    return json_response(_topic(row), status=201, headers={"Location": f"/v1/topics/{body.key}"})


# ---------------------------------------------------------------- regions and groups


@routes.get("/v1/regions")
@operation("List regions (administrative divisions)", "catalogue", {200: ("every region", RegionList)})
async def list_regions(request: web.Request) -> web.StreamResponse:
    await key_of(request)
    rows = await request.app[SERVICE].store.list_regions()
    return json_response(RegionList(items=[Region(code=r[0], name=r[1], name_en=r[2]) for r in rows]))


@routes.get("/v1/groups")
@operation("List population groups", "catalogue", {200: ("every group", GroupList)})
async def list_groups(request: web.Request) -> web.StreamResponse:
    await key_of(request)
    rows = await request.app[SERVICE].store.list_groups()
    return json_response(GroupList(items=[Group(code=r[0], name=r[1], name_en=r[2]) for r in rows]))


@routes.patch("/v1/topics/{key}")
@operation("Change a topic", "catalogue", {200: ("the topic as changed", Topic)}, roles=(Role.ADMIN,),
           body=TopicPatch, errors=(404,),
           description="The fields given replace the stored ones (key and domain stay). A schedule that differs "
                       "from the stored one is set now: compliance is owed from the current period unless it names "
                       "`since`; `\"schedule\": null` removes it.")
async def update_topic(request: web.Request) -> web.StreamResponse:
    await key_with_role(request, Role.ADMIN)
    body = await parse_body(request, TopicPatch)
    row = await request.app[SERVICE].store.update_topic(request.match_info["key"],
                                                        body.model_dump(include=body.model_fields_set))
    if row is None:
        raise NotFoundError("no such topic")
    return json_response(_topic(row))
