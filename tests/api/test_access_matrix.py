"""The access matrix, generated from app.url_map: every /api/v1 route taking an id is tried by
every role and by another merchant. A route without a case here fails the test, so a new route
cannot ship without its access rules being decided.

Admin policy on merchant endpoints: an admin reads every merchant's orders and may cancel any of
them (support), but products and webhooks belong to a merchant's own integration and need a
merchant principal (403 for staff). Operators and viewers work in the dashboard, never here (403).
A merchant asking for another merchant's resource always gets 404, never 403.
"""

from __future__ import annotations

import uuid

import pytest

from tests.helpers import (
    admin_headers,
    bearer,
    create_product,
    create_user,
    merchant_with_key,
    order_body,
    token_for,
)

ROLES = ("admin", "operator", "viewer", "merchant_user", "merchant_key", "other_merchant")
STAFF_ONLY = {"admin": "ok", "operator": 403, "viewer": 403, "merchant_user": 403,
              "merchant_key": 403, "other_merchant": 403}
MERCHANT_OWNED = {"admin": 403, "operator": 403, "viewer": 403, "merchant_user": "ok",
                  "merchant_key": "ok", "other_merchant": 404}
ORDER_OWNED = {**MERCHANT_OWNED, "admin": "ok"}


def _order(world) -> str:
    return world.client.post("/api/v1/orders", json=order_body(),
                             headers=world.headers["merchant_key"]).get_json()["id"]


def _webhook(world) -> str:
    response = world.client.post(
        "/api/v1/webhooks", json={"url": "https://hooks.example.com/x", "events":
                                  ["order.completed"]},
        headers=world.headers["merchant_key"],
    )
    assert response.status_code == 201, response.get_json()
    return response.get_json()["id"]


def _api_key(world) -> str:
    return world.client.post(f"/api/v1/merchants/{world.merchant_id}/api-keys",
                             json={"name": "m"}, headers=world.headers["admin"]).get_json()["id"]


# (method, rule) -> (build the concrete path for a fresh resource of merchant A, body, policy)
CASES = {
    ("POST", "/api/v1/merchants/<merchant_id>/api-keys"): (
        lambda w: f"/api/v1/merchants/{w.merchant_id}/api-keys", {"name": "k"}, STAFF_ONLY),
    ("DELETE", "/api/v1/api-keys/<key_id>"): (
        lambda w: f"/api/v1/api-keys/{_api_key(w)}", None, STAFF_ONLY),
    ("POST", "/api/v1/api-keys/<key_id>/rotate"): (
        lambda w: f"/api/v1/api-keys/{_api_key(w)}/rotate", {}, STAFF_ONLY),
    ("GET", "/api/v1/products/<sku>"): (
        lambda w: "/api/v1/products/A-ONLY", None, MERCHANT_OWNED),
    ("PATCH", "/api/v1/products/<sku>"): (
        lambda w: "/api/v1/products/A-ONLY", {"stock": 50}, MERCHANT_OWNED),
    ("GET", "/api/v1/orders/<order_id>"): (
        lambda w: f"/api/v1/orders/{_order(w)}", None, ORDER_OWNED),
    ("POST", "/api/v1/orders/<order_id>/cancel"): (
        lambda w: f"/api/v1/orders/{_order(w)}/cancel", None, ORDER_OWNED),
    ("GET", "/api/v1/orders/<order_id>/events"): (
        lambda w: f"/api/v1/orders/{_order(w)}/events", None, ORDER_OWNED),
    ("PUT", "/api/v1/flags/<name>"): (
        lambda w: "/api/v1/flags/matrix_flag", {"enabled": True}, STAFF_ONLY),
    ("DELETE", "/api/v1/webhooks/<webhook_id>"): (
        lambda w: f"/api/v1/webhooks/{_webhook(w)}", None, MERCHANT_OWNED),
    ("GET", "/api/v1/webhooks/<webhook_id>/deliveries"): (
        lambda w: f"/api/v1/webhooks/{_webhook(w)}/deliveries", None, MERCHANT_OWNED),
    ("POST", "/api/v1/webhooks/<webhook_id>/rotate-secret"): (
        lambda w: f"/api/v1/webhooks/{_webhook(w)}/rotate-secret", {}, MERCHANT_OWNED),
}


def id_routes(app) -> list[tuple[str, str]]:
    """(method, rule) of every /api/v1 route with a path parameter."""
    return sorted(
        (method, rule.rule)
        for rule in app.url_map.iter_rules()
        if rule.rule.startswith("/api/v1/") and rule.arguments
        for method in (rule.methods or set()) - {"HEAD", "OPTIONS"}
    )


class World:
    def __init__(self, app, client):
        self.client = client
        admin = admin_headers(app, client)
        self.merchant_id, key_a = merchant_with_key(client, admin, name="A")
        _, key_b = merchant_with_key(client, admin, name="B")
        create_product(client, key_a, stock=10_000)
        create_product(client, key_a, sku="A-ONLY")
        create_product(client, key_b, stock=10_000)
        staff = {}
        for role in ("operator", "viewer"):
            name = f"{role}-{uuid.uuid4().hex[:6]}"
            create_user(app, name, role)
            staff[role] = bearer(token_for(client, name))
        shop_user = f"shop-{uuid.uuid4().hex[:6]}"
        create_user(app, shop_user, "merchant", self.merchant_id)
        self.headers = {
            "admin": admin, **staff, "merchant_user": bearer(token_for(client, shop_user)),
            "merchant_key": key_a, "other_merchant": key_b,
        }


def test_every_id_route_has_an_access_case(sqlite_app):
    missing = [route for route in id_routes(sqlite_app) if route not in CASES]
    assert not missing, f"decide the access rules of these routes in CASES: {missing}"


@pytest.mark.parametrize("role", ROLES)
def test_access_matrix(app, client, role):
    world = World(app, client)
    failures = []
    for method, rule in id_routes(app):
        if (method, rule) not in CASES:
            continue  # reported by test_every_id_route_has_an_access_case
        build, body, policy = CASES[(method, rule)]
        path = build(world)
        response = client.open(path, method=method, json=body, headers=world.headers[role])
        expected = policy[role]
        ok = response.status_code < 300 if expected == "ok" else response.status_code == expected
        if not ok:
            failures.append(f"{role} {method} {path}: {response.status_code} (want {expected})")
        if response.status_code >= 400:
            assert response.mimetype == "application/problem+json"
    assert not failures, "\n".join(failures)
