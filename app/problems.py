"""RFC 9457 problem+json responses, shared by the API, the auth layer and the ops endpoints."""

from __future__ import annotations

import json
from typing import Any

from flask import Response, g
from werkzeug.exceptions import HTTPException
from werkzeug.http import HTTP_STATUS_CODES

PROBLEM_BASE = "https://orderprocessing.example/problems/"
PROBLEM_TYPES = {
    400: "bad-request",
    401: "unauthorized",
    403: "forbidden",
    404: "not-found",
    405: "method-not-allowed",
    409: "conflict",
    413: "payload-too-large",
    415: "unsupported-media-type",
    422: "validation-error",
    429: "rate-limited",
    500: "internal-error",
    503: "service-unavailable",
}


# Werkzeug's stock texts speak of servers and URLs typed by hand; ours speak to an API client.
_PLAIN_DETAILS = {
    400: "The request is malformed.",
    403: "Your role does not allow this.",
    404: "No such resource here: check the path and the id.",
    405: "This method is not allowed on this path; see the Allow header.",
    413: "The body is over the size limit (1 MiB).",
    415: "Send the body as application/json.",
}


def client_detail(exc: HTTPException) -> str | None:
    """The exception's description when our code set one; else a plain text for its status."""
    if exc.description == type(exc).description:
        return _PLAIN_DETAILS.get(exc.code or 500, exc.description)
    return exc.description


def problem_response(
    status: int,
    *,
    detail: str | None = None,
    type_: str | None = None,
    title: str | None = None,
    errors: list[dict[str, str]] | None = None,
    headers: dict[str, str] | None = None,
    **extra: Any,
) -> Response:
    """A problem+json response; `detail` must be safe for clients (no traces, SQL or paths)."""
    body: dict[str, Any] = {
        "type": PROBLEM_BASE + (type_ or PROBLEM_TYPES.get(status, "error")),
        "title": title or HTTP_STATUS_CODES.get(status, "Error"),
        "status": status,
        "detail": detail or HTTP_STATUS_CODES.get(status, "Error"),
        "request_id": getattr(g, "request_id", None),
    }
    if errors is not None:
        body["errors"] = errors
    body.update(extra)
    response = Response(json.dumps(body), status=status, mimetype="application/problem+json")
    if status == 401:
        response.headers["WWW-Authenticate"] = "Bearer"  # exactly as the contract writes it
    for name, value in (headers or {}).items():
        response.headers[name] = value
    return response


def dependency_problem() -> Response:
    """The 503 for a dependency (the database, Redis) that is away: retry in a few seconds."""
    return problem_response(
        503,
        detail="A service we depend on is unavailable; retry shortly.",
        headers={"Retry-After": "5"},
    )
