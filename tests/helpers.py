"""Test helpers: users, tokens, merchants and a real RQ worker in burst mode."""

from __future__ import annotations

import uuid

from tests.conftest import PASSWORD

ORDER_BODY = {
    "items": [{"sku": "SKU-1", "quantity": 2}],
    "customer": {"email": "ana@example.com", "name": "Ana"},
    "shipping_address": {
        "line1": "1 Jalan Ampang",
        "city": "Kuala Lumpur",
        "postal_code": "50450",
        "country": "MY",
    },
    "payment": {"token": "tok_visa"},
}


def create_user(app, username: str, role: str, merchant_id: str | None = None):
    from app.services import accounts

    with app.app_context():
        user = accounts.create_user(username, PASSWORD, role, merchant_id)
        return user.id


def token_for(client, username: str, password: str = PASSWORD) -> str:
    response = client.post("/api/v1/auth/token", json={"username": username, "password": password})
    assert response.status_code == 200, response.get_json()
    return response.get_json()["access_token"]


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def admin_headers(app, client) -> dict[str, str]:
    name = f"admin-{uuid.uuid4().hex[:6]}"
    create_user(app, name, "admin")
    return bearer(token_for(client, name))


def merchant_with_key(client, admin: dict[str, str], name: str = "Acme") -> tuple[str, dict]:
    """A new merchant and headers carrying a fresh API key of it."""
    merchant = client.post("/api/v1/merchants", json={"name": name}, headers=admin).get_json()
    key = client.post(
        f"/api/v1/merchants/{merchant['id']}/api-keys", json={"name": "test"}, headers=admin
    ).get_json()
    return merchant["id"], {"X-API-Key": key["key"]}


def create_product(client, headers, sku="SKU-1", price=1999, stock=10, currency="MYR"):
    response = client.post(
        "/api/v1/products",
        json={
            "sku": sku,
            "name": f"Product {sku}",
            "price": price,
            "currency": currency,
            "stock": stock,
        },
        headers=headers,
    )
    assert response.status_code == 201, response.get_json()
    return response.get_json()


def order_body(**changes) -> dict:
    import copy

    body = copy.deepcopy(ORDER_BODY)
    for key, value in changes.items():
        if key == "token":
            body["payment"]["token"] = value
        elif key == "country":
            body["shipping_address"]["country"] = value
        else:
            body[key] = value
    return body


def drain_queues(app) -> None:
    """Run a real RQ worker (the production AppWorker) in burst mode until the queues are empty."""
    from rq import Queue

    from app.infra.queue import ALL_QUEUES
    from worker.runner import AppWorker

    with app.app_context():
        connection = app.extensions["redis"]
        queue_class = getattr(AppWorker, "queue_class", Queue)  # the worker's own Queue class
        queues = [
            queue_class(app.config["QUEUE_PREFIX"] + q, connection=connection) for q in ALL_QUEUES
        ]
        worker = AppWorker(queues, connection=connection, name=f"test-{uuid.uuid4().hex[:8]}")
        worker.work(burst=True)


def csrf_token_from(html: str) -> str:
    import re

    match = re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', html) or re.search(
        r'name="csrf_token" value="([^"]+)"', html
    )
    assert match, "no CSRF token in the page"
    return match.group(1)


def web_login(client, username: str, password: str = PASSWORD):
    """Log in through the real form, CSRF token included; returns the POST response."""
    page = client.get("/login")
    token = csrf_token_from(page.get_data(as_text=True))
    return client.post(
        "/login", data={"username": username, "password": password, "csrf_token": token}
    )
