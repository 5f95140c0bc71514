"""ETag / If-None-Match for single resources."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from typing import Any

from flask import Response, current_app, jsonify, request


def json_text(body: dict[str, Any]) -> str:
    """The body as `jsonify` sends it outside debug mode (compact), for caches that keep text."""
    return current_app.json.dumps(body, separators=(",", ":")) + "\n"


def conditional_json(tag: str | None, build: Callable[[], dict[str, Any] | str]) -> Response:
    """200 with the JSON and its ETag, or 304 when If-None-Match already names it.

    With a known `tag` (a version), a 304 is answered without building the body at all; without
    one, the tag is the hash of the body. `build` may return the JSON text itself (`json_text`),
    sent as it is. If-None-Match compares weakly (RFC 9110, 13.1.2): W/"tag" matches "tag".
    """
    if tag is not None and request.if_none_match.contains_weak(tag):
        return _not_modified(tag)
    body = build()
    if isinstance(body, str):
        response = current_app.response_class(body, mimetype="application/json")
        response.set_etag(tag)
        return response
    if tag is None:
        canonical = json.dumps(body, sort_keys=True, separators=(",", ":")).encode()
        tag = hashlib.sha256(canonical).hexdigest()[:32]
        if request.if_none_match.contains_weak(tag):
            return _not_modified(tag)
    response = jsonify(body)
    response.set_etag(tag)
    return response


def _not_modified(tag: str) -> Response:
    response = Response(status=304)
    response.set_etag(tag)
    return response
