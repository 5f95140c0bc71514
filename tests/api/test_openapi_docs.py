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


def _schema(document: dict, ref_holder: dict) -> dict:
    return document["components"]["schemas"][ref_holder["$ref"].rsplit("/", 1)[1]]


def test_webhook_deliveries_are_described_as_openapi_webhooks(sqlite_app):
    from app.domain.saga import ORDER_EVENT_TYPES

    document = build_document(sqlite_app)
    assert document["openapi"].startswith("3.1")  # top-level `webhooks` needs 3.1
    delivery = document["webhooks"]["orderEvent"]["post"]
    assert delivery["security"] == []
    headers = {p["name"]: p for p in delivery["parameters"] if p["in"] == "header"}
    signature = headers["X-Webhook-Signature"]
    assert signature["required"] is True
    assert "t=<unix seconds>,v1=" in signature["description"]
    assert "HMAC-SHA256" in signature["description"] and "rotation" in signature["description"]
    pattern = re.compile(signature["schema"]["pattern"])
    assert pattern.match("t=1700000000,v1=" + "a" * 64)
    assert pattern.match("t=1700000000,v1=" + "a" * 64 + ",v1=" + "b" * 64)
    assert not pattern.match("v1=" + "a" * 64)
    assert set(headers["X-Webhook-Event"]["schema"]["enum"]) == ORDER_EVENT_TYPES

    body = _schema(document, delivery["requestBody"]["content"]["application/json"]["schema"])
    assert set(body["required"]) == {"id", "type", "created_at", "data"}
    assert set(body["properties"]["type"]["enum"]) == ORDER_EVENT_TYPES
    assert body["properties"]["created_at"]["format"] == "date-time"
    data = _schema(document, body["properties"]["data"])
    assert set(data["required"]) == {"order", "detail"}
    # The order inside is the very schema the API answers orders with.
    assert data["properties"]["order"]["$ref"] == "#/components/schemas/OrderOut"
    assert set(delivery["responses"]) == {"2XX", "default"}
    assert "retried" in delivery["responses"]["default"]["description"]


def test_the_documented_delivery_body_is_what_the_outbox_sends(sqlite_app, sqlite_client):
    """Real delivery bodies, built by the outbox, fit the model the document is built from."""
    from sqlalchemy import select

    from app.api.webhooks import WebhookEvent
    from app.extensions import db
    from app.infra.models import WebhookDelivery
    from app.services import outbox
    from tests.helpers import order_body
    from tests.integration.saga_support import merchant_with_stock

    merchant = merchant_with_stock(sqlite_app, sqlite_client)
    hook = sqlite_client.post("/api/v1/webhooks", headers=merchant, json={
        "url": "http://127.0.0.1:9/never", "events": ["order.created", "order.cancel_requested"],
    }).get_json()
    order = sqlite_client.post("/api/v1/orders", json=order_body(), headers=merchant).get_json()
    sqlite_client.post(f"/api/v1/orders/{order['id']}/cancel", headers=merchant)
    with sqlite_app.app_context():
        assert outbox.publish_pending_events() == [(hook["id"], order["id"])]
        bodies = db.session.scalars(
            select(WebhookDelivery.body).where(WebhookDelivery.webhook_id == hook["id"])
        ).all()
    events = [WebhookEvent.model_validate_json(body) for body in bodies]
    assert sorted(e.type for e in events) == ["order.cancel_requested", "order.created"]
    assert all(e.data.order.id == order["id"] for e in events)


def test_products_201_lists_its_location_header(sqlite_app):
    created = build_document(sqlite_app)["paths"]["/api/v1/products"]["post"]["responses"]["201"]
    assert "Location" in created["headers"]


def test_webhook_events_enum_documents_what_the_server_accepts(sqlite_app, sqlite_client):
    from app.domain.saga import ORDER_EVENT_TYPES
    from tests.helpers import admin_headers, merchant_with_key

    document = build_document(sqlite_app)
    create = document["components"]["schemas"]["WebhookCreate"]["properties"]["events"]
    assert set(create["items"]["enum"]) == ORDER_EVENT_TYPES
    # The enum documents; the server's own check still refuses, with its own message, naming
    # every bad field at once.
    _, merchant = merchant_with_key(sqlite_client, admin_headers(sqlite_app, sqlite_client))
    refused = sqlite_client.post("/api/v1/webhooks", headers=merchant, json={
        "url": "ftp://example.com/x", "events": ["order.created", "order.exploded"]})
    assert refused.status_code == 422
    assert {(e["field"], e["message"]) for e in refused.get_json()["errors"]} == {
        ("url", "must be an absolute http or https URL"),
        ("events[1]", "unknown event type 'order.exploded'"),
    }


def test_rotate_secret_takes_and_honours_an_idempotency_key(sqlite_app, sqlite_client):
    from tests.helpers import admin_headers, merchant_with_key

    document = build_document(sqlite_app)
    for path in ("/api/v1/webhooks/{webhook_id}/rotate-secret", "/api/v1/api-keys/{key_id}/rotate"):
        names = {p["name"] for p in document["paths"][path]["post"]["parameters"]}
        assert "Idempotency-Key" in names, path

    _, merchant = merchant_with_key(sqlite_client, admin_headers(sqlite_app, sqlite_client))
    hook = sqlite_client.post("/api/v1/webhooks", headers=merchant, json={
        "url": "https://merchant.example/hooks", "events": ["order.completed"]}).get_json()
    path = f"/api/v1/webhooks/{hook['id']}/rotate-secret"
    keyed = {**merchant, "Idempotency-Key": "rotate-once"}
    first = sqlite_client.post(path, json={"overlap_seconds": 60}, headers=keyed)
    again = sqlite_client.post(path, json={"overlap_seconds": 60}, headers=keyed)
    assert first.status_code == again.status_code == 201, first.get_json()
    assert again.get_json() == first.get_json()  # the same new secret: rotated once, not twice
    assert again.headers["Idempotent-Replayed"] == "true"
    other = sqlite_client.post(path, json={"overlap_seconds": 0}, headers=keyed)
    assert other.status_code == 422
    assert other.get_json()["type"].endswith("/idempotency-key-reused")
    unkeyed = sqlite_client.post(path, json={"overlap_seconds": 60}, headers=merchant)
    assert unkeyed.get_json()["secret"] != first.get_json()["secret"]


def test_swagger_ui_never_calls_the_online_validator(sqlite_client):
    script = sqlite_client.get("/static/js/swagger-init.js").get_data(as_text=True)
    assert re.search(r"\bvalidatorUrl:\s*null\b", script)
