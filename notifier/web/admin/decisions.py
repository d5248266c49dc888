"""The dashboard's approve and reject forms (SPEC "Departments and approval"): POSTs from the list of alerts
waiting for approval, with the session's CSRF token, decided by the signed-in admin key through the same core as
the API (`notifier.approval`). Viewers see what waits but cannot decide.

Each answer is a redirect back to the list, or an error page saying why nothing was decided.
"""

from __future__ import annotations

from aiohttp import web

from notifier.approval import approve_alert, reject_alert
from notifier.errors import ConflictError, Forbidden, InvalidInput, NotFoundError
from notifier.i18n import N_
from notifier.models import Role
from notifier.web.admin.dashboard import HTML, _field, _not_found, _see_other, render, require_session
from notifier.web.admin.session import AdminSession, tokens_match
from notifier.web.openapi import operation
from notifier.web.problems import read_form_body
from notifier.web.state import SERVICE

routes = web.RouteTableDef()

FORM_DOC = ("Form field `csrf` (the session's token){extra}. Admin sessions only; redirects to the list when "
            "decided, else an error page: 403 (a viewer, the alert's own key, or a stale form), 404, 409 (no "
            "longer waiting){also}.")
REFUSED = {  # why nothing was decided, for the error page: (status, title, body)
    "stale": (403, N_("Request refused"), N_("The form token is missing or has expired; go back and try again.")),
    "viewer": (403, N_("Request refused"), N_("Viewer keys cannot approve or reject disclosures.")),
    "author": (403, N_("Request refused"), N_("The key that published this disclosure cannot approve or reject it: "
                                             "another key of its department, or another admin key, must decide.")),
    "decided": (409, N_("Already decided"), N_("This disclosure is no longer waiting for approval.")),
    "reason": (422, N_("Give a reason"), N_("Say in 1 to 500 characters why it is rejected, without phone "
                                           "numbers or email addresses (the reason is kept in the audit log).")),
}


def _refused(request: web.Request, session: AdminSession, why: str) -> web.Response:
    status, title, body = REFUSED[why]
    return render(request, "error.html", status=status, session=session, title_key=title, body_key=body)


async def _decide(request: web.Request, *, approve: bool) -> web.StreamResponse:
    session = await require_session(request)
    form = await read_form_body(request)
    if not tokens_match(_field(form, "csrf"), session.csrf):
        return _refused(request, session, "stale")
    if session.role is not Role.ADMIN:
        return _refused(request, session, "viewer")
    service = request.app[SERVICE]
    key = await service.store.key_by_hash(session.key_hash)
    assert key is not None  # noqa: S101 - require_session found it valid a moment ago
    try:
        if approve:
            service.dispatcher.wake(await approve_alert(service.store, request.match_info["id"], key))
        else:
            await reject_alert(service.store, request.match_info["id"], key, _field(form, "reason") or "")
    except NotFoundError:
        return _not_found(request, session)
    except Forbidden:
        return _refused(request, session, "author")
    except ConflictError:
        return _refused(request, session, "decided")
    except InvalidInput:
        return _refused(request, session, "reason")
    return _see_other("/admin#waiting")


@routes.post("/admin/alerts/{id}/approve")
@operation("Admin dashboard: approve an alert waiting for approval", "admin",
           {303: ("approved: its deliveries are queued; back to the list", None)}, auth=False, media_type=HTML,
           errors=(403, 404, 409), description=FORM_DOC.format(extra="", also=""))
async def admin_approve(request: web.Request) -> web.StreamResponse:
    return await _decide(request, approve=True)


@routes.post("/admin/alerts/{id}/reject")
@operation("Admin dashboard: reject an alert waiting for approval", "admin",
           {303: ("rejected: nothing is sent; back to the list", None)}, auth=False, media_type=HTML,
           errors=(403, 404, 409, 422), description=FORM_DOC.format(extra=" and `reason` (1-500 characters)",
                                                                    also=", 422 (no reason)"))
async def admin_reject(request: web.Request) -> web.StreamResponse:
    return await _decide(request, approve=False)
