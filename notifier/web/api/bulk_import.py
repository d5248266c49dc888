"""`POST /v1/subscribers/import` (admin): a bureau's registry as CSV or NDJSON, imported all or nothing, or with
`?partial=true` the valid rows only. The rules live in `notifier.importing`; this handler reads the body, calls
it, and answers with the report — as a 422 problem whose `errors` name each rejected row when nothing was stored.
"""

from __future__ import annotations

from aiohttp import web
from pydantic import ConfigDict, Field

from notifier.assisted_import import import_assisted
from notifier.audit import Actor
from notifier.errors import FieldError
from notifier.import_rows import COLUMNS
from notifier.importing import ImportOptions, ImportOutcome, ImportReport, import_bytes
from notifier.models import Frozen, Role
from notifier.service import webhook_allows_private
from notifier.web.auth import key_with_role
from notifier.web.openapi import operation
from notifier.web.problems import (
    PROBLEM_TYPE,
    BadRequest,
    FieldProblem,
    Problem,
    UnsupportedMediaType,
    dotted,
    dumps,
    json_response,
    parse_query,
)
from notifier.web.state import SERVICE
from subscriptions.models import SubscriberStatus

routes = web.RouteTableDef()

MEDIA_TYPES = {"text/csv": "csv", "application/x-ndjson": "ndjson", "application/ndjson": "ndjson"}
API_CHUNK_ROWS = 1_000  # the server's other requests and deliveries run between chunks


class ImportQuery(Frozen):
    partial: bool = Field(default=False, description="store the valid rows even when others are rejected")
    pending: bool = Field(default=False, description="store subscribers as pending (contacts to be verified) "
                                                     "instead of active")
    label: str = Field(default="api", min_length=1, max_length=80,
                       description="bureau or registry name, recorded as consent source `import:<label>`")
    assisted: bool = Field(default=False, description="the file is a sub-district office's CSV list of assisted "
                                                      "people, each told by a proxy (columns proxy, label, region, "
                                                      "groups)")


class ImportProblem(Problem):
    """The 422 of a rejected import: a problem whose `errors` name each rejected row, plus the whole report."""

    model_config = ConfigDict(frozen=True, title="ImportProblem")

    report: ImportReport


def rejected_response(report: ImportReport) -> web.Response:
    """422 problem+json: `errors` as `rows.<row>.<field>` with the line of the file, and the report."""
    errors = [FieldError(f"rows.{p.row}.{p.field}" if p.field else f"rows.{p.row}", f"{p.message} (line {p.line})")
              for p in report.problems]
    problem = ImportProblem(
        type="urn:notifier:problem:invalid-input", title="Invalid input", status=422,
        detail=f"{report.rejected} of {report.rows} rows were rejected; nothing was stored",
        errors=[FieldProblem(field=dotted(e.field), message=e.message) for e in errors], report=report)
    return web.Response(status=422, text=dumps(problem.model_dump(mode="json")), content_type=PROBLEM_TYPE,
                        charset="utf-8")


@routes.post("/v1/subscribers/import")
@operation("Import subscribers from a CSV or NDJSON file", "subscribers",
           {200: ("the import report: what was stored, and each rejected row with its reason", ImportReport)},
           roles=(Role.ADMIN,), query=ImportQuery, errors=(400, 413, 415, 422),
           body_media_types=tuple(MEDIA_TYPES),
           description="The body is a file, UTF-8 (with or without BOM) or GBK: `text/csv` with a header naming "
                       f"the columns ({', '.join(COLUMNS)}, or their Chinese names such as 手机号, 区县, 人群; "
                       "lists separated by `;` or `|`), or `application/x-ndjson` with one subscriber body of "
                       "`POST /v1/subscribers` per line. Every row is validated as that endpoint validates, must "
                       "name at least one topic, and may not repeat a mobile number, email or openid held by "
                       "another row or by a stored subscriber. All or nothing: when any row is rejected nothing "
                       "is stored and the answer is a 422 problem whose `errors` name each row "
                       "(`rows.<row>.<column>`, rows counted from 1 after the header) and whose `report` member "
                       "is the import report. With `partial=true` the valid rows are stored and the answer is "
                       "200 with the report. Imported subscribers are active with verified contacts (the bureau "
                       "vouches for them) unless `pending=true`; generated webhook secrets are in the report, "
                       "shown once. Contacts never appear in a report except masked. With `assisted=true` the "
                       "CSV is a list of assisted people (`proxy`: a proxy's id or mobile number, `label`, "
                       "`region`, `groups`), added to their proxies' lists by the same rules; labels never appear "
                       "in the report.")
async def import_subscribers(request: web.Request) -> web.StreamResponse:
    key = await key_with_role(request, Role.ADMIN)
    query = parse_query(request, ImportQuery)
    fmt = MEDIA_TYPES.get(request.content_type)
    if fmt is None:
        raise UnsupportedMediaType(f"send the file as {' or '.join(MEDIA_TYPES)}")
    raw = await request.read()
    if not raw.strip():
        raise BadRequest("the body is empty: send the file")
    service = request.app[SERVICE]
    if query.assisted:
        if fmt != "csv":
            raise UnsupportedMediaType("a list of assisted people is sent as text/csv")
        report = await import_assisted(service.store, raw, label=query.label, partial=query.partial)
        return rejected_response(report) if report.outcome is ImportOutcome.REJECTED else json_response(report)
    options = ImportOptions(label=query.label, partial=query.partial,
                            status=SubscriberStatus.PENDING if query.pending else SubscriberStatus.ACTIVE,
                            allow_private_webhooks=webhook_allows_private(service.settings),
                            chunk_rows=API_CHUNK_ROWS, actor=Actor.of_key(key))
    report = await import_bytes(service.store, raw, fmt, options)
    if report.outcome is ImportOutcome.REJECTED:
        return rejected_response(report)
    return json_response(report)
