"""Every error under /api/v1 becomes problem+json; nothing internal reaches the client."""

from __future__ import annotations

import logging

from flask import abort, request
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError
from sqlalchemy.exc import DataError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeoutError
from werkzeug.exceptions import HTTPException

from app.api import api
from app.api.parsing import storable
from app.domain.errors import Conflict, FieldError, NotFound, ValidationFailed
from app.problems import client_detail, dependency_problem, problem_response

log = logging.getLogger(__name__)


@api.before_request
def reject_unstorable_parameters():
    """A NUL or lone surrogate in a path or query parameter is a 422, not a database error."""
    values = list((request.view_args or {}).items())
    if request.query_string:  # parsing an empty query string still builds a MultiDict
        values += request.args.items(multi=True)
    bad = [name for name, value in values if isinstance(value, str) and not storable(value)]
    if bad:
        raise ValidationFailed(
            [FieldError(name, "contains a NUL character or invalid Unicode") for name in bad]
        )


@api.before_request
def refuse_bodies_that_are_not_json():
    """415 for a body of another media type on every endpoint, those that read no body (cancel,
    DELETE) included: the contract promises it for any body, and a client sending form data or
    text to the API has a bug it should hear about rather than see ignored."""
    if request.method in ("GET", "HEAD", "OPTIONS"):
        return
    chunked = request.headers.get("Transfer-Encoding", "").lower() == "chunked"
    if ((request.content_length or 0) > 0 or chunked) and request.mimetype != "application/json":
        abort(415, description="Send the body as application/json.")


@api.after_request
def bare_options_answer(response):
    """Flask answers OPTIONS itself with an empty text/html 200; the API's is a 204 with Allow."""
    if request.method == "OPTIONS" and response.status_code == 200 and not response.data:
        response.status_code = 204
        del response.headers["Content-Type"]
    return response


@api.errorhandler(DataError)
def data_error(exc: DataError):
    # The last line of defence: a value the database refuses (out of range, bad encoding).
    log.warning("database refused a value: %s", type(exc.orig).__name__)
    return problem_response(
        422,
        detail="A value is out of the range this API accepts.",
        errors=[{"field": "body", "message": "a value is out of range"}],
    )


@api.errorhandler(ValidationFailed)
def validation_failed(exc: ValidationFailed):
    return problem_response(
        422,
        detail="The request is not valid; see errors.",
        errors=[{"field": e.field, "message": e.message} for e in exc.errors],
    )


@api.errorhandler(NotFound)
def not_found(exc: NotFound):
    return problem_response(404, detail=f"No such {exc.what}.")


@api.errorhandler(Conflict)
def conflict(exc: Conflict):
    return problem_response(409, detail=str(exc))


@api.errorhandler(HTTPException)
def http_error(exc: HTTPException):
    return problem_response(exc.code or 500, detail=client_detail(exc))


# A dependency gone away: the database (refusing connections, or the pool exhausted) or Redis.
DEPENDENCY_ERRORS = (OperationalError, PoolTimeoutError, RedisConnectionError, RedisTimeoutError)


@api.errorhandler(OperationalError)
@api.errorhandler(PoolTimeoutError)
@api.errorhandler(RedisConnectionError)
@api.errorhandler(RedisTimeoutError)
def dependency_down(exc: Exception):
    log.error("a dependency is unavailable: %s", type(exc).__name__)
    return dependency_problem()


@api.errorhandler(Exception)
def unexpected(exc: Exception):
    log.exception("unhandled error in API request")
    return problem_response(
        500, detail="Something went wrong on our side; the request id helps us find it."
    )
