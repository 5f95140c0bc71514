"""X-Request-ID: echoed when the client sends a well-formed one, generated otherwise."""

from __future__ import annotations

import re
import uuid

from flask import Flask, g, request

_VALID = re.compile(r"^[A-Za-z0-9._-]{1,128}$")


def init_request_ids(app: Flask) -> None:
    @app.before_request
    def assign_request_id():
        sent = request.headers.get("X-Request-ID", "")
        g.request_id = sent if _VALID.match(sent) else uuid.uuid4().hex

    @app.after_request
    def echo_request_id(response):
        response.headers["X-Request-ID"] = g.get("request_id") or uuid.uuid4().hex
        return response
