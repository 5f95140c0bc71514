"""The OpenAPI 3.1 document, built from the routes themselves and the pydantic models they use.

Each API view is decorated with `@documented(...)`, naming its request model and its response
models; the document walks `app.url_map`, so a route cannot exist without appearing here, and the
schemas are the very models the views validate with (`parse_body`). Nothing is hand-kept text.

The requests the app itself sends (webhook deliveries) are OpenAPI 3.1 top-level `webhooks`:
the module that describes them registers them with `documented_webhook(...)`, naming the body
model, the request headers and the answers the sender expects.
"""

from __future__ import annotations

import re
from typing import Any

from flask import Flask
from pydantic import BaseModel

from app.api.schemas import Problem

# The errors any operation can answer, and the ones that depend on what it does.
ALWAYS = (404, 405, 429, 500, 503)
WITH_AUTH = (401, 403)
WITH_BODY = (400, 413, 415, 422)

ERROR_TEXT = {
    400: "Malformed JSON",
    401: "Missing, malformed, expired or revoked credentials",
    403: "Authenticated, but the role may not do this",
    404: "No such resource (or another merchant's)",
    405: "Method not allowed on this path",
    409: "Conflicts with the resource's state, or the same Idempotency-Key is in flight",
    413: "Body over 1 MiB",
    415: "Body is not application/json",
    422: "Validation failed (per-field `errors`), or an Idempotency-Key reused with another body",
    429: "Rate limit exceeded; see Retry-After",
    500: "Unexpected error; quote the request id",
    503: "A dependency (database, Redis) is unavailable",
}

HEADER_DOCS = {
    "X-Request-ID": "The request id: the client's if well-formed, else a generated one",
    "X-RateLimit-Limit": "Requests allowed in the current window",
    "X-RateLimit-Remaining": "Requests left in the current window",
    "X-RateLimit-Reset": "Seconds until the window resets",
}
# Request headers every operation (or every conditional read) takes.
REQUEST_ID_PARAMETER = {
    "name": "X-Request-ID",
    "in": "header",
    "required": False,
    "description": "1-128 characters of [A-Za-z0-9._-]: echoed in the response and written to "
    "the logs (also the worker jobs' logs); anything else is replaced by a generated id",
    "schema": {"type": "string", "minLength": 1, "maxLength": 128},
}
IF_NONE_MATCH_PARAMETER = {
    "name": "If-None-Match",
    "in": "header",
    "required": False,
    "description": "An ETag this resource sent; 304 while it is still the current one",
    "schema": {"type": "string"},
}
INTEGER_HEADERS = {"X-RateLimit-Limit", "X-RateLimit-Remaining", "X-RateLimit-Reset", "Retry-After"}


def documented(
    summary: str,
    *,
    responses: dict[int, type[BaseModel] | None],
    body: type[BaseModel] | None = None,
    query: dict[str, dict[str, Any]] | None = None,
    headers: dict[int, dict[str, str]] | None = None,
    tag: str = "api",
    public: bool = False,
    errors: tuple[int, ...] = (),
):
    """Describe an API view for the OpenAPI document (its success responses; the errors every
    operation of its kind can answer are added, plus `errors` - those only this one answers)."""

    def decorator(view):
        view.openapi = {
            "summary": summary,
            "responses": responses,
            "body": body,
            "query": query or {},
            "headers": headers or {},
            "tag": tag,
            "public": public,
            "errors": errors,
        }
        return view

    return decorator


# The requests the app sends to its clients, by name: `documented_webhook` fills it at import.
WEBHOOKS: dict[str, dict[str, Any]] = {}


def documented_webhook(
    name: str,
    summary: str,
    *,
    body: type[BaseModel],
    headers: dict[str, tuple[str, dict[str, Any]]],
    responses: dict[str, str],
    description: str = "",
    tag: str = "webhooks",
) -> None:
    """Describe a POST the app sends to a client's URL (an OpenAPI `webhooks` entry):
    `headers` maps each request header to (description, JSON schema); `responses` maps a status
    (or a range such as "2XX", or "default") to what that answer means to the sender."""
    WEBHOOKS[name] = {
        "summary": summary,
        "description": description,
        "body": body,
        "headers": headers,
        "responses": responses,
        "tag": tag,
    }


def _schema_ref(model: type[BaseModel], components: dict[str, Any]) -> dict[str, str]:
    schema = model.model_json_schema(ref_template="#/components/schemas/{model}")
    for name, sub in schema.pop("$defs", {}).items():
        components[name] = sub
    components[model.__name__] = schema
    return {"$ref": f"#/components/schemas/{model.__name__}"}


def _header(name: str, description: str) -> dict[str, Any]:
    kind = "integer" if name in INTEGER_HEADERS else "string"
    return {"description": description, "schema": {"type": kind}}


def _common_headers() -> dict[str, Any]:
    return {name: _header(name, text) for name, text in HEADER_DOCS.items()}


def _error_response(status: int, components: dict[str, Any]) -> dict[str, Any]:
    headers = _common_headers()
    if status == 401:
        headers["WWW-Authenticate"] = _header("WWW-Authenticate", "Always `Bearer`")
    if status in (409, 429):
        headers["Retry-After"] = _header("Retry-After", "Seconds to wait before retrying")
    return {
        "description": ERROR_TEXT[status],
        "headers": headers,
        "content": {"application/problem+json": {"schema": _schema_ref(Problem, components)}},
    }


def _operation_id(rule, method: str) -> str:
    name = rule.endpoint.split(".", 1)[1]
    methods = (rule.methods or set()) - {"HEAD", "OPTIONS"}
    return name if len(methods) == 1 else f"{name}_{method.lower()}"


def _operation(view, rule, method: str, components: dict[str, Any]) -> dict[str, Any]:
    meta = view.openapi
    protected = not meta["public"]
    operation: dict[str, Any] = {
        "operationId": _operation_id(rule, method),
        "summary": meta["summary"],
        "tags": [meta["tag"]],
        "parameters": [
            {"name": arg, "in": "path", "required": True,
             "schema": {"type": "string", "minLength": 1, "maxLength": 100}}
            for arg in rule.arguments
        ],
        "responses": {},
    }
    operation["parameters"].append(REQUEST_ID_PARAMETER)
    if 304 in meta["responses"]:
        operation["parameters"].append(IF_NONE_MATCH_PARAMETER)
    for name, schema in meta["query"].items():
        operation["parameters"].append(
            {"name": name, "in": "query", "required": False, "schema": schema}
        )
    if getattr(view, "idempotent", False):
        operation["parameters"].append(
            {
                "name": "Idempotency-Key",
                "in": "header",
                "required": False,
                "description": "Replays the first response for 24 h; scoped to the merchant",
                "schema": {"type": "string", "minLength": 1, "maxLength": 255},
            }
        )
    if not protected:
        operation["security"] = []
    if meta["body"] is not None:
        operation["requestBody"] = {
            "required": True,
            "content": {"application/json": {"schema": _schema_ref(meta["body"], components)}},
        }
    for status, model in meta["responses"].items():
        response: dict[str, Any] = {"description": model.__name__ if model else "No content"}
        headers = _common_headers()
        for name, text in meta["headers"].get(status, {}).items():
            headers[name] = _header(name, text)
        if getattr(view, "idempotent", False) and status < 300:
            headers["Idempotent-Replayed"] = _header(
                "Idempotent-Replayed", "`true` when this is a replayed response"
            )
        response["headers"] = headers
        if model is not None:
            response["content"] = {"application/json": {"schema": _schema_ref(model, components)}}
        operation["responses"][str(status)] = response
    errors = set(ALWAYS) | (set(WITH_AUTH) if protected else {401}) | set(meta["errors"])
    if meta["body"] is not None or getattr(view, "idempotent", False):
        errors |= set(WITH_BODY) | {409}
    if meta["query"] or rule.arguments:
        errors.add(422)  # a malformed parameter
    if any(code >= 300 for code in meta["responses"]):
        errors -= set(meta["responses"])
    for status in sorted(errors):
        operation["responses"].setdefault(str(status), _error_response(status, components))
    return operation


def _webhook_operation(name: str, meta: dict[str, Any], components: dict[str, Any]):
    operation: dict[str, Any] = {
        "operationId": name,
        "summary": meta["summary"],
        "tags": [meta["tag"]],
        "security": [],  # the receiver checks the signature header, not our credentials
        "parameters": [
            {"name": header, "in": "header", "required": True, "description": text,
             "schema": schema}
            for header, (text, schema) in meta["headers"].items()
        ],
        "requestBody": {
            "required": True,
            "content": {"application/json": {"schema": _schema_ref(meta["body"], components)}},
        },
        "responses": {status: {"description": text} for status, text in meta["responses"].items()},
    }
    if meta["description"]:
        operation["description"] = meta["description"]
    return operation


def openapi_path(rule: str) -> str:
    """/orders/<order_id> -> /orders/{order_id} (converters dropped)."""
    return re.sub(r"<(?:[^:<>]+:)?([^<>]+)>", r"{\1}", rule)


def undocumented_routes(app: Flask) -> list[str]:
    """API routes without `@documented` (a test keeps this empty)."""
    return sorted(
        rule.rule
        for rule in app.url_map.iter_rules()
        if rule.endpoint.startswith("api.")
        and not hasattr(app.view_functions[rule.endpoint], "openapi")
        and not getattr(app.view_functions[rule.endpoint], "openapi_exempt", False)
    )


def build_document(app: Flask) -> dict[str, Any]:
    """The OpenAPI document of every /api/v1 route registered on `app`."""
    components: dict[str, Any] = {}
    paths: dict[str, Any] = {}
    for rule in sorted(app.url_map.iter_rules(), key=lambda r: r.rule):
        if not rule.endpoint.startswith("api."):
            continue
        view = app.view_functions[rule.endpoint]
        if not hasattr(view, "openapi"):
            continue
        path = openapi_path(rule.rule)
        for method in sorted((rule.methods or set()) - {"HEAD", "OPTIONS"}):
            paths.setdefault(path, {})[method.lower()] = _operation(
                view, rule, method, components
            )
    webhooks = {
        name: {"post": _webhook_operation(name, meta, components)}
        for name, meta in sorted(WEBHOOKS.items())
    }
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "Order processing merchant API",
            "version": "1",
            "description": "The merchant JSON API. Errors are RFC 9457 problem+json.",
        },
        "servers": [{"url": "/"}],
        "security": [{"bearerAuth": []}, {"apiKey": []}],
        "paths": paths,
        "webhooks": webhooks,
        "components": {
            "schemas": components,
            "securitySchemes": {
                "bearerAuth": {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"},
                "apiKey": {"type": "apiKey", "in": "header", "name": "X-API-Key"},
            },
        },
    }
