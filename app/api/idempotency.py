"""`@idempotent`: the Idempotency-Key contract for every creating POST (webhooks reuse it too).

Put it below the permission decorator, so the caller is known when the key is scoped:

    @api.post("/orders")
    @require_permission("api:merchant")
    @idempotent
    def place_order(): ...
"""

from __future__ import annotations

import hashlib
import json
from functools import wraps

from flask import Response, current_app, g, request
from flask_login import current_user

from app.api.parsing import parse_json, request_body
from app.domain.errors import FieldError, ValidationFailed
from app.problems import problem_response
from app.services import idempotency

HEADER = "Idempotency-Key"
MAX_KEY_LENGTH = 255
# Headers of the first response worth replaying (the rest are per-request: ids, rate limits).
REPLAYED_HEADERS = ("Location", "Content-Type", "ETag")


def idempotency_scope(principal) -> str:
    """Keys are scoped to the caller's merchant, or to the user for staff callers."""
    merchant_id = getattr(principal, "merchant_id", None)
    if getattr(principal, "role", None) == "merchant" and merchant_id:
        return f"merchant:{merchant_id}"
    return f"user:{principal.id}"


def request_fingerprint() -> str:
    """Method, path and body; JSON bodies are compared by content, not by whitespace."""
    raw = request_body()
    try:
        canonical = json.dumps(parse_json(raw), sort_keys=True, separators=(",", ":")).encode()
    except (ValueError, UnicodeDecodeError, RecursionError):
        canonical = raw
    digest = hashlib.sha256(f"{request.method} {request.path}\n".encode())
    digest.update(canonical)
    return digest.hexdigest()


def holds_secret(view):
    """Mark a view whose answer shows a secret once: its stored first response is encrypted.

    Put it below `@idempotent`."""
    view.answer_holds_secret = True
    return view


def _replay(stored: idempotency.StoredResponse) -> Response:
    try:
        body = idempotency.unseal(stored.body, current_app.config["SECRET_KEY"])
    except idempotency.ReplayUnavailable:
        return problem_response(
            409,
            detail="The first response to this Idempotency-Key can no longer be replayed "
            "(the key that sealed it was rotated); send the request with a new key.",
        )
    response = Response(body, status=stored.status)
    for name, value in stored.headers.items():
        response.headers[name] = value
    response.headers["Idempotent-Replayed"] = "true"
    return response


def answers_lost_responses(recover):
    """Mark a view whose commit marks its claim (services.idempotency.mark_committed), with
    `recover(location, **view_args)` -> the JSON body its lost answer had. Put it below
    `@idempotent`."""

    def mark(view):
        view.recover_lost_answer = recover
        return view

    return mark


def _recover(view, outcome: idempotency.Claim, view_args: dict) -> Response:
    """The first request committed its resource but died before storing its answer: rebuild the
    answer from the resource, store it as the key's, and replay it (never create it twice)."""
    recover = getattr(view, "recover_lost_answer", None)
    if recover is None:  # only views that mark their commit leave such a claim
        return problem_response(409, detail="A request with this Idempotency-Key is still being "
                                "processed; retry later.", headers={"Retry-After": "1"})
    stored = outcome.response
    rebuilt = recover(stored.headers.get("Location", ""), **view_args)
    body = current_app.json.response(rebuilt).get_data(as_text=True)  # as the view would
    answer = idempotency.StoredResponse(stored.status, body, stored.headers)
    idempotency.complete(outcome.record_seq, answer)
    return _replay(answer)


def idempotent(view):
    """Run the view once per Idempotency-Key; replay its response to every repeat.

    Every answer the view gives is kept and replayed - success and refusal alike (the contract:
    the first response's status and body) - except a 5xx, which frees the key for a retry.
    """

    @wraps(view)
    def wrapped(*args, **kwargs):
        key = request.headers.get(HEADER)
        if key is None:
            return view(*args, **kwargs)
        if not 1 <= len(key) <= MAX_KEY_LENGTH:
            raise ValidationFailed([FieldError(HEADER, "must be 1 to 255 characters")])
        outcome = idempotency.claim(
            idempotency_scope(current_user), key, request.method, request.path,
            request_fingerprint(),
        )
        if outcome.outcome == "replay":
            return _replay(outcome.response)
        if outcome.outcome == "reused":
            return problem_response(
                422,
                type_="idempotency-key-reused",
                title="Idempotency key reused",
                detail="This Idempotency-Key was used with a different request; use a new key.",
            )
        if outcome.outcome == "recover":
            return _recover(view, outcome, kwargs)
        if outcome.outcome == "in_flight":
            return problem_response(
                409,
                detail="A request with this Idempotency-Key is still being processed; retry later.",
                headers={"Retry-After": "1"},
            )
        g.idempotency_claim = outcome.record_seq  # for a view that marks its commit with it
        try:
            try:
                result = view(*args, **kwargs)
            except Exception as error:  # noqa: BLE001 - its error response is the one stored
                # A refusal raised by the view (422, 404, 409) is a response like any other: it
                # is what the contract replays to the same key with the same body.
                result = current_app.handle_user_exception(error)
            response = current_app.make_response(result)
        except BaseException:
            idempotency.release(outcome.record_seq)
            raise
        if response.status_code >= 500:
            # Our failure, maybe passing (a dependency away): the key is freed so that the same
            # request can be retried and still create its resource once.
            idempotency.release(outcome.record_seq)
            return response
        headers = {h: response.headers[h] for h in REPLAYED_HEADERS if h in response.headers}
        body = response.get_data(as_text=True)
        if getattr(view, "answer_holds_secret", False):
            body = idempotency.seal(body, current_app.config["SECRET_KEY"])
        idempotency.complete(
            outcome.record_seq, idempotency.StoredResponse(response.status_code, body, headers)
        )
        return response

    wrapped.idempotent = True
    return wrapped
