"""The API's own description: `GET /openapi.json` (OpenAPI 3.1, generated from the routes and the pydantic models)
and `GET /docs`, a self-contained page that renders it (government intranets have no internet, so no CDN).

Each handler is documented where it is written, with `@operation(...)`; the document is built by walking the
application's router, so a route cannot exist without appearing here.
"""

from __future__ import annotations

import re
import secrets
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass, field
from importlib.metadata import PackageNotFoundError, version
from typing import Any

from aiohttp import web
from pydantic import BaseModel
from pydantic.json_schema import JsonSchemaMode, models_json_schema

from notifier.models import Role
from notifier.web.problems import PROBLEM_TYPE, Problem, json_response

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
Response = tuple[str, type[BaseModel] | None]

ERROR_TEXT = {
    400: "the body is not JSON",
    401: "no key, an unknown key or a revoked key",
    403: "the key's role or topic patterns do not allow this",
    404: "no such resource",
    409: "conflicts with what is stored",
    413: "the body is larger than the server accepts",
    415: "the body is not application/json",
    422: "invalid input; `errors` names each field",
}


@dataclass(frozen=True)
class Operation:
    summary: str
    tag: str
    responses: Mapping[int, Response]
    roles: tuple[Role, ...] = ()  # empty with auth=True: any role
    auth: bool = True
    query: type[BaseModel] | None = None
    body: type[BaseModel] | None = None
    errors: tuple[int, ...] = ()
    media_type: str = "application/json"  # of the success responses
    description: str = ""
    extra: Mapping[str, Any] = field(default_factory=dict)
    alt_media_types: tuple[str, ...] = ()  # other forms of the 200 answer (text/csv with ?format=csv)
    body_media_types: tuple[str, ...] = ()  # other forms the body may take besides JSON (text/csv uploads)


_OPERATIONS: dict[Handler, Operation] = {}

HTML = "text/html"
# Every HTML POST is a browser form, read by `problems.read_form_body` in either encoding a browser sends; the fields
# are named in each operation's description. Declared so that clients and fuzzers send forms, not nothing.
FORM_MEDIA_TYPES = ("application/x-www-form-urlencoded", "multipart/form-data")
_FORM_SCHEMA = {"type": "object", "additionalProperties": {"type": "string"}}


def operation(summary: str, tag: str, responses: Mapping[int, Response], **kw: Any) -> Callable[[Handler], Handler]:
    """Document a handler (see `Operation`); it is returned unchanged."""
    doc = Operation(summary=summary, tag=tag, responses=responses, **kw)

    def register(handler: Handler) -> Handler:
        _OPERATIONS[handler] = doc
        return handler

    return register


# ---------------------------------------------------------------- the document


class _Schemas:
    """Every model the document mentions, turned into components/schemas in one pass (pydantic names each model
    once, adding -Input/-Output only where the two modes differ)."""

    def __init__(self, docs: Iterable[Operation]) -> None:
        wanted: dict[tuple[type[BaseModel], JsonSchemaMode], None] = {(Problem, "serialization"): None}
        for doc in docs:
            for model in (doc.query, doc.body):
                if model is not None:
                    wanted[(model, "validation")] = None
            for _, out in doc.responses.values():
                if out is not None:
                    wanted[(out, "serialization")] = None
        refs, defs = models_json_schema(list(wanted), ref_template="#/components/schemas/{model}")
        self.refs: dict[tuple[Any, JsonSchemaMode], dict[str, Any]] = dict(refs)
        self.components: dict[str, Any] = defs.get("$defs", {})

    def ref(self, model: type[BaseModel], mode: JsonSchemaMode) -> dict[str, Any]:
        return dict(self.refs[(model, mode)])

    def resolved(self, model: type[BaseModel], mode: JsonSchemaMode) -> dict[str, Any]:
        name = str(self.refs[(model, mode)]["$ref"]).rsplit("/", 1)[-1]
        return dict(self.components[name])


def _query_parameters(schemas: _Schemas, model: type[BaseModel]) -> list[dict[str, Any]]:
    schema = schemas.resolved(model, "validation")
    required = set(schema.get("required", []))
    params = []
    for name, prop in schema.get("properties", {}).items():
        param: dict[str, Any] = {"name": name, "in": "query", "required": name in required, "schema": prop}
        if "description" in prop:
            param["description"] = prop["description"]
        params.append(param)
    return params


def _content(media_type: str, schema: dict[str, Any] | None) -> dict[str, Any]:
    return {media_type: {"schema": schema} if schema is not None else {}}


def _takes_form(method: str, doc: Operation) -> bool:
    return method == "post" and doc.media_type == HTML and doc.body is None and not doc.body_media_types


def _responses(doc: Operation, schemas: _Schemas, *, form: bool = False) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for status, (text, model) in sorted(doc.responses.items()):
        entry: dict[str, Any] = {"description": text}
        if status != 204:
            entry["content"] = _content(doc.media_type, schemas.ref(model, "serialization") if model else None)
            if status == 200:
                entry["content"].update({alt: {"schema": {"type": "string"}} for alt in doc.alt_media_types})
        out[str(status)] = entry
    errors = set(doc.errors)
    if doc.auth:
        errors |= {401, 403} if doc.roles else {401}
    if doc.body is not None:
        errors |= {400, 413, 415, 422}
    if form:
        errors |= {400, 413}
    if doc.query is not None:
        errors.add(422)
    problem = {"$ref": "#/components/responses/Problem"}
    for status in sorted(errors):
        out[str(status)] = {"description": ERROR_TEXT.get(status, "error"),
                            "content": _content(PROBLEM_TYPE, schemas.ref(Problem, "serialization"))}
    out["default"] = problem
    return out


def _describe(path: str, method: str, doc: Operation, handler: Handler, schemas: _Schemas) -> dict[str, Any]:
    roles = ", ".join(r.value for r in doc.roles) if doc.roles else "any role"
    description = doc.description or ""
    if doc.auth:
        description = f"{description}\n\nRoles: {roles}.".strip()
    op: dict[str, Any] = {"operationId": handler.__name__.strip("_"), "summary": doc.summary, "tags": [doc.tag],
                          "description": description, "security": [{"bearer": []}] if doc.auth else []}
    params = [{"name": name, "in": "path", "required": True, "schema": {"type": "string"}}
              for name in re.findall(r"{(\w+)}", path)]
    if doc.query is not None:
        params += _query_parameters(schemas, doc.query)
    params += [dict(p) for p in doc.extra.get("headers", [])]
    if params:
        op["parameters"] = params
    if doc.body is not None:
        op["requestBody"] = {"required": True, "content": _content("application/json",
                                                                   schemas.ref(doc.body, "validation"))}
        op["requestBody"]["content"].update({alt: {"schema": {"type": "string"}} for alt in doc.body_media_types})
    elif doc.body_media_types:  # a body that is a file, not JSON (bulk imports)
        op["requestBody"] = {"required": True,
                             "content": {alt: {"schema": {"type": "string"}} for alt in doc.body_media_types}}
    elif _takes_form(method, doc):
        op["requestBody"] = {"required": False, "content": {m: {"schema": _FORM_SCHEMA} for m in FORM_MEDIA_TYPES}}
    op["responses"] = _responses(doc, schemas, form=_takes_form(method, doc))
    return op


def _package_version() -> str:
    try:
        return version("notifier-gov")
    except PackageNotFoundError:
        return "0.0.0"


def build_openapi(app: web.Application) -> dict[str, Any]:
    """The OpenAPI 3.1 document of every route the application serves."""
    routes = [(r.resource.canonical, r.method.lower(), r.handler) for r in app.router.routes()
              if r.resource is not None and r.method not in ("HEAD", "*")]
    fallback = Operation(summary="(undocumented)", tag="other", responses={200: ("OK", None)}, auth=False)
    docs = {handler: _OPERATIONS.get(handler, fallback) for _, _, handler in routes}
    schemas = _Schemas(docs.values())
    paths: dict[str, dict[str, Any]] = {}
    for path, method, handler in sorted(routes, key=lambda r: (r[0], r[1])):
        paths.setdefault(path, {})[method] = _describe(path, method, docs[handler], handler, schemas)
    return {
        "openapi": "3.1.0",
        "info": {"title": "notifier", "version": _package_version(),
                 "description": "公益信息定向推送服务 — targeted public-welfare disclosures over SMS, WeChat, "
                                "email and webhooks, with coverage you can see."},
        "servers": [{"url": "/"}],
        "paths": paths,
        "components": {
            "schemas": schemas.components,
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer",
                                           "description": "an API key: `Authorization: Bearer ntf_…`"}},
            "responses": {"Problem": {"description": "an RFC 9457 problem",
                                      "content": _content(PROBLEM_TYPE, schemas.ref(Problem, "serialization"))}},
        },
    }


# ---------------------------------------------------------------- routes

routes = web.RouteTableDef()


@routes.get("/openapi.json")
@operation("This document (OpenAPI 3.1)", "meta", {200: ("the OpenAPI document", None)}, auth=False)
async def openapi_json(request: web.Request) -> web.StreamResponse:
    return json_response(build_openapi(request.app))


@routes.get("/docs")
@operation("Human-readable API reference", "meta", {200: ("an HTML page", None)}, auth=False,
           media_type=HTML)
async def docs_page(request: web.Request) -> web.StreamResponse:
    # A nonce per response lets the one inline script and style run while the policy refuses anything injected.
    nonce = secrets.token_urlsafe(16)
    policy = (f"default-src 'none'; script-src 'nonce-{nonce}'; style-src 'nonce-{nonce}'; connect-src 'self'; "
              "base-uri 'none'; frame-ancestors 'none'")
    return web.Response(text=DOCS_HTML.replace("{nonce}", nonce), content_type="text/html", charset="utf-8",
                        headers={"Content-Security-Policy": policy, "X-Content-Type-Options": "nosniff"})


DOCS_HTML = """<!doctype html>
<html lang="zh-CN">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>通知服务接口文档 · notifier API reference</title>
<style nonce="{nonce}">
body{font:15px/1.5 system-ui,"Microsoft YaHei",sans-serif;margin:0 auto;max-width:60rem;padding:1rem;color:#222}
h1{font-size:1.4rem}h1 small{display:block;font-size:.9rem;color:#666;font-weight:normal}
details{border:1px solid #ddd;border-radius:4px;margin:.4rem 0;padding:.3rem .6rem}
summary{cursor:pointer}code.m{display:inline-block;min-width:4.2rem;font-weight:bold;text-transform:uppercase}
.get{color:#0a6}.post{color:#06c}.patch{color:#a60}.delete{color:#c22}.put{color:#a0a}
pre{background:#f6f6f6;padding:.5rem;overflow:auto;font-size:.8rem}h3{font-size:1rem;margin:.6rem 0 .2rem}
</style>
</head>
<body>
<h1>通知服务接口文档
<small>notifier API reference — generated from <a href="/openapi.json">/openapi.json</a></small></h1>
<p id="status">正在加载… Loading…</p>
<div id="ops"></div>
<script nonce="{nonce}">
"use strict";
// Text only (textContent), never innerHTML: descriptions come from the document and must not become markup.
function el(tag, text, cls) {
  const node = document.createElement(tag);
  if (text !== undefined) node.textContent = text;
  if (cls) node.className = cls;
  return node;
}
function block(title, value) {
  const box = el("div");
  box.append(el("h3", title), el("pre", JSON.stringify(value, null, 2)));
  return box;
}
fetch("/openapi.json").then(r => r.json()).then(doc => {
  document.getElementById("status").textContent = doc.info.title + " " + doc.info.version + " — " +
    doc.info.description;
  const ops = document.getElementById("ops");
  for (const [path, methods] of Object.entries(doc.paths)) {
    for (const [method, op] of Object.entries(methods)) {
      const item = el("details");
      const head = el("summary");
      head.append(el("code", method, "m " + method), el("code", path), document.createTextNode(" — " + op.summary));
      item.append(head);
      if (op.description) item.append(el("p", op.description));
      if (op.parameters) item.append(block("参数 Parameters", op.parameters));
      if (op.requestBody) item.append(block("请求体 Request body", op.requestBody.content));
      item.append(block("响应 Responses", op.responses));
      ops.append(item);
    }
  }
  ops.append(block("模型 Schemas", doc.components.schemas));
}).catch(err => { document.getElementById("status").textContent = "加载失败 Failed to load: " + err; });
</script>
</body>
</html>
"""
