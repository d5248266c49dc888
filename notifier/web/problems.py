"""RFC 9457 problem documents and the reading of request input (JSON bodies, form bodies, query strings).

Every refusal the API gives is `application/problem+json` with a field-level `errors` list. Field paths are
dotted (`contacts.sms`, `subscriptions.0.topic`). Messages never repeat the offending value: a wrong mobile number
or email address is personal data and must not travel back through proxies and logs.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping
from functools import partial
from itertools import accumulate
from typing import Any, TypeVar

from aiohttp import web
from aiohttp.http_exceptions import HttpProcessingError
from multidict import MultiDictProxy
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from notifier.errors import FieldError, InvalidInput, NotifierError
from notifier.input_rules import field_errors

PROBLEM_TYPE = "application/problem+json"
JSON_TYPES = ("application/json",)

M = TypeVar("M", bound=BaseModel)

dumps = partial(json.dumps, ensure_ascii=False)


FormFields = MultiDictProxy[str | bytes | bytearray | web.FileField]  # what aiohttp's `request.post()` gives


class FieldProblem(BaseModel):
    model_config = ConfigDict(frozen=True)

    field: str = Field(description="dotted path into the body or query, e.g. contacts.sms; empty: the whole body")
    message: str


class Problem(BaseModel):
    """An RFC 9457 problem document."""

    model_config = ConfigDict(frozen=True, title="Problem")

    type: str = Field(description="URI naming the kind of problem")
    title: str
    status: int
    detail: str
    errors: list[FieldProblem] = Field(default_factory=list)


class BadRequest(NotifierError):
    """The body cannot be read at all (not JSON, wrong encoding)."""

    status = 400
    title = "Bad request"


class UnsupportedMediaType(NotifierError):
    status = 415
    title = "Unsupported media type"


_INDEX = re.compile(r"\[(\d+)\]")


def dotted(path: str) -> str:
    """`subscriptions[0].topic` → `subscriptions.0.topic`: one path style whichever layer named the field."""
    return _INDEX.sub(r".\1", path)


def _slug(title: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", title.lower()).strip("-") or "error"


def problem_response(status: int, title: str, detail: str, errors: Iterable[FieldError] = (),
                     headers: Mapping[str, str] | None = None) -> web.Response:
    """A problem+json response. The `type` is a URN per kind of problem so that clients can switch on it."""
    problem = Problem(
        type=f"urn:notifier:problem:{_slug(title)}", title=title, status=status, detail=detail,
        errors=[FieldProblem(field=dotted(e.field), message=e.message) for e in errors])
    return web.Response(status=status, text=dumps(problem.model_dump(mode="json")), content_type=PROBLEM_TYPE,
                        charset="utf-8", headers=headers)


def error_response(exc: NotifierError) -> web.Response:
    headers = {"WWW-Authenticate": 'Bearer realm="notifier"'} if exc.status == 401 else None
    return problem_response(exc.status, exc.title, exc.detail, exc.errors, headers)


# ---------------------------------------------------------------- pydantic errors → field errors
# (the rule lives in notifier.input_rules.field_errors, shared with the CLI and bulk import)


def validate(model: type[M], data: Any, *, what: str = "body") -> M:
    """Validate input data against a model; InvalidInput (422) with field errors when it does not fit."""
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise InvalidInput(f"the {what} is not valid", field_errors(exc)) from None


# ---------------------------------------------------------------- request input


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


# How deep arrays and objects may nest in a body. Every model we read is a few levels deep (an alert's `data` a few
# more); without a bound, a 1,000-deep body exhausts the parser's recursion (RecursionError, a 500).
MAX_JSON_DEPTH = 64
_JSON_STRING = re.compile(r'"(?:[^"\\]|\\.)*"', re.DOTALL)
_NESTING = {ord("["): 1, ord("{"): 1, ord("]"): -1, ord("}"): -1}
_NOT_BRACKETS = re.compile(r"[^\[\]{}]+")


def json_depth(text: str) -> int:
    """How deeply arrays and objects nest in a JSON text (brackets inside strings do not count). Linear, and C
    loops only, so a body at `max_body_bytes` costs milliseconds."""
    brackets = _NOT_BRACKETS.sub("", _JSON_STRING.sub("", text))
    return max(accumulate(map(_NESTING.__getitem__, map(ord, brackets))), default=0)


async def read_json(request: web.Request) -> Any:
    """The request's JSON body; 415 for another content type, 400 when empty, not JSON or nested deeper than
    MAX_JSON_DEPTH (413 comes from aiohttp itself when the body is over `client_max_size`)."""
    if request.content_type not in JSON_TYPES:
        raise UnsupportedMediaType("send the body as application/json")
    raw = await request.read()
    if not raw.strip():
        raise BadRequest("a JSON body is required")
    try:
        text = raw.decode(json.detect_encoding(raw))
    except (UnicodeDecodeError, LookupError):
        raise BadRequest("the body is not valid JSON") from None
    if json_depth(text) > MAX_JSON_DEPTH:
        raise BadRequest(f"the body nests arrays and objects deeper than {MAX_JSON_DEPTH} levels")
    try:
        # NaN and Infinity are accepted by Python's json but are not JSON; other systems would choke on them.
        return json.loads(text, parse_constant=_reject_constant)
    except ValueError as exc:  # JSONDecodeError and UnicodeDecodeError are both ValueErrors
        detail = f"the body is not valid JSON: {exc.msg}" if isinstance(exc, json.JSONDecodeError) else (
            "the body is not valid JSON")
        raise BadRequest(detail) from None


async def read_form_body(request: web.Request) -> FormFields:
    """A form POST's fields (urlencoded or multipart), for every HTML form route. A body aiohttp cannot read — a
    multipart type without its boundary, broken multipart framing, an unknown charset — is the client's mistake:
    400, never a 500."""
    try:
        return await request.post()
    except (ValueError, LookupError, HttpProcessingError):  # UnicodeDecodeError is a ValueError
        raise BadRequest("the form body cannot be read") from None


async def parse_body(request: web.Request, model: type[M]) -> M:
    """Read and validate a JSON body (unknown fields are refused by the models' extra="forbid")."""
    return validate(model, await read_json(request))


def parse_query(request: web.Request, model: type[M]) -> M:
    """Validate the query string against a model; a parameter given twice is refused rather than half-read."""
    errors = [FieldError(name, "given more than once") for name in set(request.query)
              if len(request.query.getall(name)) > 1]
    if errors:
        raise InvalidInput("the query is not valid", sorted(errors, key=lambda e: e.field))
    return validate(model, dict(request.query), what="query")


def json_response(body: BaseModel | Mapping[str, Any] | list[Any], status: int = 200,
                  headers: Mapping[str, str] | None = None) -> web.Response:
    data = body.model_dump(mode="json") if isinstance(body, BaseModel) else body
    return web.json_response(data, status=status, headers=headers, dumps=dumps)
