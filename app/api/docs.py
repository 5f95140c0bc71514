"""/api/v1/openapi.json and the interactive docs at /api/docs (every asset served locally)."""

from __future__ import annotations

from flask import current_app, jsonify, render_template

from app.api import api
from app.api.openapi import build_document

# Swagger UI sets inline style attributes; scripts stay 'self' only (the init script is a file).
DOCS_CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
    "img-src 'self' data:; font-src 'self'; connect-src 'self'; object-src 'none'; "
    "base-uri 'self'; form-action 'self'; frame-ancestors 'none'"
)


@api.get("/openapi.json")
def openapi_document():
    """The OpenAPI document (built once per process from the routes and schemas)."""
    document = current_app.extensions.get("openapi_document")
    if document is None:
        document = current_app.extensions["openapi_document"] = build_document(current_app)
    return jsonify(document)


def api_docs_page():
    """Swagger UI for the document above."""
    response = current_app.make_response(render_template("api_docs.html"))
    response.headers["Content-Security-Policy"] = DOCS_CSP
    return response


@api.record_once
def _register_docs_page(state) -> None:
    # /api/docs lives outside the blueprint's /api/v1 prefix.
    state.app.add_url_rule("/api/docs", "api_docs", api_docs_page, methods=["GET"])


openapi_document.openapi_exempt = True  # the document does not describe itself
