"""The aiohttp application: `create_app(settings)` wires the routes, the Service (opened and closed with the app),
the problem+json error middleware and the request-timing middleware; `run_server(settings)` serves it.

Error translation happens here, once: NotifierError and store refusals become their problem; aiohttp's own HTTP
errors (404 route, 405, 413 body too large) become problems too; anything unexpected is a 500 problem that says
nothing about internals (the traceback goes to the log).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Callable

from aiohttp import web
from aiohttp.typedefs import Handler
from pydantic import ValidationError

from notifier.config import Settings
from notifier.errors import NotifierError
from notifier.service import Service
from notifier.settle import settle_long_running
from notifier.web import openapi
from notifier.web.access_log import protect_access_log
from notifier.web.admin import compliance as admin_compliance
from notifier.web.admin import dashboard as admin
from notifier.web.admin import decisions as admin_decisions
from notifier.web.api import alerts as api_alerts
from notifier.web.api import approvals as api_approvals
from notifier.web.api import audit as api_audit
from notifier.web.api import basics as api
from notifier.web.api import bulk_import as api_import
from notifier.web.api import callbacks as api_callbacks
from notifier.web.api import compliance as api_compliance
from notifier.web.api import coverage as api_coverage
from notifier.web.api import subscribers as api_subscribers
from notifier.web.citizen import assist as citizen_assist
from notifier.web.citizen import manage as citizen_manage
from notifier.web.citizen import manage_request as citizen_manage_request
from notifier.web.citizen import subscribe as citizen_subscribe
from notifier.web.problems import error_response, problem_response
from notifier.web.public import cap as public_cap
from notifier.web.public import disclosures as public
from notifier.web.public import feeds as public_feeds
from notifier.web.state import METRICS, SERVICE

log = logging.getLogger("notifier.web")

CLIENT_GONE = 499  # nginx's code for "the client closed the connection before the answer": not our 500
UNMATCHED_ROUTE = "unmatched"  # one label for every unknown path, so scanners cannot blow up the label set

# Headers of aiohttp's HTTP exceptions that describe its plain-text body; the problem body replaces it.
_BODY_HEADERS = frozenset({"content-type", "content-length"})


def _http_problem(exc: web.HTTPException, request: web.Request) -> web.StreamResponse:
    headers = {k: v for k, v in exc.headers.items() if k.lower() not in _BODY_HEADERS}
    if isinstance(exc, web.HTTPRequestEntityTooLarge):
        detail = f"the body is larger than {request.app[SERVICE].settings.server.max_body_bytes} bytes"
    elif isinstance(exc, web.HTTPNotFound):
        detail = "no such path"
    elif isinstance(exc, web.HTTPMethodNotAllowed):
        detail = f"{request.method} is not allowed here"
    else:
        detail = exc.reason
    return problem_response(exc.status, exc.reason, detail, headers=headers)


@web.middleware
async def problem_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Every error as an RFC 9457 problem+json."""
    try:
        return await handler(request)
    except NotifierError as exc:
        return error_response(exc)
    except web.HTTPException as exc:
        if exc.status < 400:  # redirects and 204s raised as exceptions are answers, not errors
            raise
        return _http_problem(exc, request)
    except asyncio.CancelledError:
        raise
    except ValidationError:
        # Input is validated by problems.validate, which answers 422; a ValidationError that gets here comes
        # from building an answer, so it is our bug, not the client's.
        log.exception("invalid data while answering %s %s", request.method, _route_of(request))
        return problem_response(500, "Internal server error", "the server could not answer this request")
    except Exception:
        log.exception("unhandled error on %s %s", request.method, _route_of(request))
        return problem_response(500, "Internal server error", "the server could not answer this request")


def _route_of(request: web.Request) -> str:
    """The route's path template (`/v1/alerts/{id}`), never the raw path: ids would make every path a label."""
    resource = request.match_info.route.resource
    return resource.canonical if resource is not None else UNMATCHED_ROUTE


@web.middleware
async def timing_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Records notifier_http_request_duration_seconds{method, route, status}."""
    started = time.perf_counter()
    status = 500
    try:
        response = await handler(request)
        status = response.status
        return response
    except web.HTTPException as exc:
        status = exc.status
        raise
    except asyncio.CancelledError:
        status = CLIENT_GONE
        raise
    finally:
        request.app[METRICS].observe_request(request.method, _route_of(request), status,
                                             time.perf_counter() - started)


def _service_context(service: Service) -> Callable[[web.Application], AsyncIterator[None]]:
    async def open_service(app: web.Application) -> AsyncIterator[None]:
        await service.open()
        try:
            service.start_worker()  # does nothing unless settings.worker.enabled
            yield
        finally:
            await service.close()

    return open_service


def create_app(settings: Settings, *, service: Service | None = None) -> web.Application:
    """The web application. Without `service`, one is built (counting delivery outcomes into /metrics), opened
    on startup (its worker started when `worker.enabled`) and closed on cleanup; a passed-in service is the
    caller's to open and close."""
    protect_access_log()  # tokens in links and contacts never reach an access log handler
    app = web.Application(client_max_size=settings.server.max_body_bytes,
                          middlewares=[timing_middleware, problem_middleware])
    if service is None:
        service = Service(settings)
        app.cleanup_ctx.append(_service_context(service))
    app[SERVICE] = service
    app[METRICS] = service.metrics
    app.router.add_routes(public_cap.routes)  # before /disclosures/{id}: /disclosures/feed.cap.atom is CAP's
    for module in (api, api_alerts, api_subscribers, api_callbacks, api_coverage, openapi, public, public_feeds):
        app.router.add_routes(module.routes)
    admin.setup(app)  # the /admin dashboard: its routes and sessions (kept in the store)
    app.router.add_routes(admin_decisions.routes)  # the dashboard's approve / reject forms
    app.router.add_routes(admin_compliance.routes)  # /admin/compliance: disclosure deadlines per department
    citizen_manage.setup(app)  # /manage/<token> and /unsubscribe/<token>: the subscriber's own pages
    citizen_manage_request.setup(app)  # /manage without a link: a code or the link to a subscribed contact
    app.router.add_routes(citizen_subscribe.routes)  # /subscribe: sign-up and contact verification
    app.router.add_routes(api_import.routes)  # POST /v1/subscribers/import: bulk import of registries
    app.router.add_routes(citizen_assist.routes)  # /assist/<token>: a proxy's list of whom to tell, confirmations
    app.router.add_routes(api_compliance.routes)  # GET /v1/catalogue/compliance: catalogue deadlines
    app.router.add_routes(api_approvals.routes)  # two-person release: approve / reject a held alert
    app.router.add_routes(api_audit.routes)  # the audit chain: GET /v1/audit, GET /audit/head
    return app


async def run_server(settings: Settings, *, service: Service | None = None) -> None:
    """Serve on settings.server.host:port until cancelled."""
    runner = web.AppRunner(create_app(settings, service=service))
    await runner.setup()
    try:
        site = web.TCPSite(runner, settings.server.host, settings.server.port)
        await site.start()
        log.info("serving on http://%s:%s", settings.server.host, settings.server.port)
        settle_long_running()
        await asyncio.Event().wait()
    finally:
        await runner.cleanup()
