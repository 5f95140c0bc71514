"""The OpenAPI document is generated from the routes and schemas; the docs page is all local."""

from __future__ import annotations

import re

from app.api.openapi import build_document, undocumented_routes


def test_every_api_route_is_documented(sqlite_app):
    assert undocumented_routes(sqlite_app) == [], "decorate these views with @documented"


def test_document_lists_every_route_with_security_and_contract_headers(sqlite_app, sqlite_client):
    response = sqlite_client.get("/api/v1/openapi.json")
    document = response.get_json()
    assert response.status_code == 200 and document["openapi"].startswith("3.")
    assert document == build_document(sqlite_app)
    rules = {
        re.sub(r"<(?:[^:<>]+:)?([^<>]+)>", r"{\1}", rule.rule)
        for rule in sqlite_app.url_map.iter_rules()
        if rule.endpoint.startswith("api.") and rule.endpoint != "api.openapi_document"
    }
    assert rules == set(document["paths"])
    assert set(document["components"]["securitySchemes"]) == {"bearerAuth", "apiKey"}

    place = document["paths"]["/api/v1/orders"]["post"]
    assert place["requestBody"]["content"]["application/json"]["schema"]["$ref"].endswith(
        "/OrderCreate")
    assert "Location" in place["responses"]["202"]["headers"]
    assert any(p["name"] == "Idempotency-Key" for p in place["parameters"])
    for status in ("400", "401", "403", "413", "415", "422", "429", "500", "503"):
        assert place["responses"][status]["content"]["application/problem+json"]
    assert "Retry-After" in place["responses"]["429"]["headers"]
    assert "WWW-Authenticate" in place["responses"]["401"]["headers"]
    read = document["paths"]["/api/v1/orders/{order_id}"]["get"]
    assert "ETag" in read["responses"]["200"]["headers"] and "304" in read["responses"]
    # The request headers the contract defines are parameters: If-None-Match on conditional
    # reads, X-Request-ID everywhere.
    for path in ("/api/v1/orders/{order_id}", "/api/v1/products/{sku}"):
        names = {p["name"] for p in document["paths"][path]["get"]["parameters"]}
        assert {"If-None-Match", "X-Request-ID"} <= names, path
    for path, operations in document["paths"].items():
        for method, operation in operations.items():
            assert any(p["name"] == "X-Request-ID" and p["in"] == "header"
                       for p in operation["parameters"]), (method, path)
    webhook_created = document["paths"]["/api/v1/webhooks"]["post"]["responses"]["201"]
    created_schema = webhook_created["content"]["application/json"]["schema"]["$ref"]
    assert "secret" in document["components"]["schemas"][created_schema.rsplit("/", 1)[1]][
        "required"]
    assert document["paths"]["/api/v1/auth/token"]["post"]["security"] == []
    cancel = document["paths"]["/api/v1/orders/{order_id}/cancel"]["post"]
    assert "409" in cancel["responses"]  # cancelling a final order
    for name in ("X-RateLimit-Limit", "X-RateLimit-Remaining", "X-RateLimit-Reset"):
        assert read["responses"]["200"]["headers"][name]["schema"] == {"type": "integer"}
    order = document["components"]["schemas"]["OrderOut"]["properties"]
    assert order["created_at"]["format"] == order["updated_at"]["format"] == "date-time"
    product = document["components"]["schemas"]["ProductCreate"]["properties"]["currency"]
    assert "MYR" in product["enum"] and "XYZ" not in product["enum"]


def test_document_schemas_are_the_validation_models(sqlite_app):
    from app.api.schemas import OrderCreate

    schemas = build_document(sqlite_app)["components"]["schemas"]
    assert schemas["OrderCreate"]["properties"].keys() == OrderCreate.model_fields.keys()
    assert schemas["OrderCreate"]["additionalProperties"] is False
    assert schemas["OrderItem"]["properties"]["quantity"]["maximum"] == 1000


def test_docs_page_loads_only_local_assets_and_no_inline_script(sqlite_client):
    page = sqlite_client.get("/api/docs")
    html = page.get_data(as_text=True)
    assert page.status_code == 200
    assert "script-src 'self'" in page.headers["Content-Security-Policy"]
    assert "unsafe-inline" not in page.headers["Content-Security-Policy"].split("script-src")[1] \
        .split(";")[0]
    sources = re.findall(r'(?:src|href)="([^"]+)"', html)
    assert sources and all(s.startswith("/") for s in sources), sources
    assert not re.search(r"<script(?![^>]*\bsrc=)[^>]*>", html), "inline script"
    for source in sources:
        asset = sqlite_client.get(source)
        assert asset.status_code == 200, source
        assert len(asset.get_data()) > 100
