"""RATELIMIT_API on every /api/v1 request, with the X-RateLimit-* headers on every response."""

from __future__ import annotations

from flask import g, request
from flask_login import current_user
from werkzeug.exceptions import MethodNotAllowed

from app.api import api
from app.api.errors import DEPENDENCY_ERRORS
from app.auth.rate_limits import count_api_request, settle_prefetched_count
from app.problems import problem_response

API_BASE = "/api/v1"


def is_api_v1_path(path: str) -> bool:
    """/api/v1 itself or anything under it (not /api/v10...)."""
    return path == API_BASE or path.startswith(API_BASE + "/")


def _rate_state():
    """Count the request for its API key or user (its IP when anonymous), once: an API-key
    request was already counted in its first round trip (app/api/prefetch.py)."""
    prefetched = g.pop("prefetched_rate", None)
    if prefetched is not None:
        return settle_prefetched_count(prefetched, current_user)
    return count_api_request(current_user)


@api.before_request
def enforce_api_rate_limit():
    """RATELIMIT_API for the caller; 429 over the limit."""
    state = _rate_state()
    g.rate_state = state
    if state is not None and not state.allowed:
        return problem_response(
            429, detail="Rate limit exceeded; see Retry-After.", headers=state.headers()
        )
    return None


@api.after_app_request
def rate_limit_headers(response):
    """Every /api/v1 response carries the caller's X-RateLimit-* (404s and 405s included), and
    a 405 its Allow header."""
    if not is_api_v1_path(request.path):
        return response
    counted_here = "rate_state" not in g
    if counted_here:
        # The limit hook did not run (unknown route, 405, a hook before it refused the request):
        # count the request all the same.
        try:
            g.rate_state = _rate_state()
        except DEPENDENCY_ERRORS:
            # The caller could not be resolved (the database is away: this response is its 503):
            # counted by client address, so the 503 still carries the headers.
            g.rate_state = count_api_request(None)
    state = g.rate_state
    routing = request.routing_exception
    if counted_here and routing is not None and state is not None and not state.allowed:
        # An unknown path or method over the limit is refused like any other request: the
        # contract's 429, not a 404 that would tell a throttled client nothing.
        refused = problem_response(
            429, detail="Rate limit exceeded; see Retry-After.", headers=state.headers()
        )
        for name, value in response.headers.items():  # X-Request-ID and the like, already set
            if name.lower() not in ("content-type", "content-length", "allow"):
                refused.headers.setdefault(name, value)
        return refused
    if state is not None:
        for name, value in state.headers().items():
            response.headers.setdefault(name, value)
    if isinstance(routing, MethodNotAllowed) and routing.valid_methods:
        # The app-wide handler builds the 405 problem; RFC 9110 wants the methods named.
        response.headers.setdefault("Allow", ", ".join(sorted(routing.valid_methods)))
    return response
