"""Two-person release over the API: `POST /v1/alerts/{id}/approve` and `POST /v1/alerts/{id}/reject` (the rules
are `notifier.approval`).

Handlers are thin: read and validate the input, call one core function, format the answer.
"""

from __future__ import annotations

from aiohttp import web
from pydantic import BaseModel, ConfigDict, Field

from notifier.approval import MAX_REASON, approve_alert, reject_alert
from notifier.models import Alert, Role
from notifier.publish import alert_view
from notifier.web.auth import key_with_role, releasing_key
from notifier.web.openapi import operation
from notifier.web.problems import json_response, parse_body
from notifier.web.state import SERVICE

routes = web.RouteTableDef()

WHO_DECIDES = ("Another key of the alert's department, or an admin key, decides: the key that published the "
               "alert gets 403, a publisher of another department 404, and an alert no longer waiting for "
               "approval 409.")


class RejectIn(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    reason: str = Field(min_length=1, max_length=MAX_REASON, description="why, kept in the alert and the audit "
                                                                         "log (no contact details)")


@routes.post("/v1/alerts/{id}/approve")
@operation("Approve an alert waiting for approval", "alerts",
           {200: ("the alert, released: its targets are frozen now and its deliveries queued", Alert)},
           roles=(Role.ADMIN, Role.PUBLISHER), errors=(404, 409), description=WHO_DECIDES)
async def approve(request: web.Request) -> web.StreamResponse:
    key = await releasing_key(request)
    service = request.app[SERVICE]
    with service.dispatcher.window.held():  # as a publish: the alert's fan-out is stored now
        approved = await approve_alert(service.store, request.match_info["id"], key)
        service.dispatcher.wake(approved)
    return json_response(alert_view(approved))


@routes.post("/v1/alerts/{id}/reject")
@operation("Reject an alert waiting for approval", "alerts",
           {200: ("the alert, rejected: nothing was or will be sent", Alert)},
           roles=(Role.ADMIN, Role.PUBLISHER), body=RejectIn, errors=(404, 409), description=WHO_DECIDES)
async def reject(request: web.Request) -> web.StreamResponse:
    key = await key_with_role(request, Role.ADMIN, Role.PUBLISHER)
    body = await parse_body(request, RejectIn)
    rejected = await reject_alert(request.app[SERVICE].store, request.match_info["id"], key, body.reason)
    return json_response(alert_view(rejected))
