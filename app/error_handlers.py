"""Errors outside the API blueprint's own handlers: problem+json for API and ops paths (unknown
routes, 405s), an HTML page for the dashboard; a dependency outage is a 503 either way."""

from __future__ import annotations

import contextlib

from flask import Flask, current_app, g, render_template, request
from werkzeug.exceptions import HTTPException

from app.extensions import db
from app.problems import client_detail, dependency_problem, problem_response


def wants_problem() -> bool:
    return request.path.startswith("/api/") or request.path in ("/readyz", "/healthz")


def http_error(exc: HTTPException):
    if wants_problem():
        return problem_response(exc.code or 500, detail=client_detail(exc))
    return render_template(
        "error.html",
        code=exc.code,
        title=exc.name,
        message=exc.description,
        request_id=g.get("request_id"),
    ), exc.code


def dependency_unavailable(exc: Exception):
    """The database or Redis away on a dashboard page: a 503 page that needs neither (the usual
    error page reads the logged-in user, from the database), never a bare 500."""
    current_app.logger.error("a dependency is unavailable: %s", type(exc).__name__)
    with contextlib.suppress(Exception):  # the connection is gone; nothing to undo
        db.session.rollback()
    if wants_problem():
        return dependency_problem()
    redis_down = "redis" in type(exc).__module__
    # Rendered without the context processors: Flask-Login's loads the user eagerly.
    page = current_app.jinja_env.get_template("unavailable.html").render(
        what="Redis" if redis_down else "Database",
        what_lower="Redis" if redis_down else "the database",
        runbook="redis-down" if redis_down else "database-failover",
        request_id=g.get("request_id"),
    )
    return page, 503, {"Retry-After": "10"}


def unexpected_error(exc: Exception):
    current_app.logger.exception("unhandled error")
    # The failed statement may have left the session unusable; the error page itself reads the
    # current user through it.
    try:
        db.session.rollback()
    except Exception:  # noqa: BLE001 - nothing more to undo; the page must still render
        current_app.logger.warning("could not roll back after the error")
    if wants_problem():
        return problem_response(500, detail="Something went wrong on our side.")
    return render_template(
        "error.html",
        code=500,
        title="Internal error",
        message="Something went wrong on our side. The request id helps us find it.",
        request_id=g.get("request_id"),
    ), 500


def init_error_handlers(app: Flask) -> None:
    from app.api.errors import DEPENDENCY_ERRORS

    app.register_error_handler(HTTPException, http_error)
    for dependency_error in DEPENDENCY_ERRORS:
        app.register_error_handler(dependency_error, dependency_unavailable)
    app.register_error_handler(Exception, unexpected_error)
