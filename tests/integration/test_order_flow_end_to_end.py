"""The thin path through every layer, on SQLite and PostgreSQL, with a real Redis and RQ worker."""

from tests.helpers import (
    admin_headers,
    create_product,
    create_user,
    drain_queues,
    merchant_with_key,
    order_body,
    web_login,
)


def test_an_order_placed_through_the_api_completes_and_shows_on_the_dashboard(app, client):
    admin = admin_headers(app, client)
    _, merchant = merchant_with_key(client, admin)
    create_product(client, merchant, sku="SKU-1", price=1999, stock=10)

    placed = client.post("/api/v1/orders", json=order_body(), headers=merchant)
    assert placed.status_code == 202
    order = placed.get_json()
    assert order["status"] == "pending"
    assert order["total_amount"] == 2 * 1999
    assert placed.headers["Location"] == f"/api/v1/orders/{order['id']}"

    drain_queues(app)

    final = client.get(f"/api/v1/orders/{order['id']}", headers=merchant).get_json()
    assert final["status"] == "completed"
    assert final["failure_reason"] is None
    events = client.get(f"/api/v1/orders/{order['id']}/events", headers=merchant).get_json()
    assert [e["type"] for e in events["data"]] == [
        "order.created",
        "inventory.reserved",
        "payment.captured",
        "shipment.created",
        "order.completed",
    ]
    product = client.get("/api/v1/products/SKU-1", headers=merchant).get_json()
    assert (product["stock"], product["reserved"]) == (8, 0)

    create_user(app, "shift-lead", "operator")
    dashboard = app.test_client()
    login = web_login(dashboard, "shift-lead")
    assert login.status_code == 302
    page = dashboard.get("/orders?status=completed")
    assert page.status_code == 200
    assert order["id"] in page.get_data(as_text=True)


def test_a_declined_payment_fails_the_order_and_returns_the_stock(app, client):
    admin = admin_headers(app, client)
    _, merchant = merchant_with_key(client, admin)
    create_product(client, merchant, stock=5)
    order = client.post(
        "/api/v1/orders", json=order_body(token="tok_chargeDeclined"), headers=merchant
    ).get_json()
    drain_queues(app)
    final = client.get(f"/api/v1/orders/{order['id']}", headers=merchant).get_json()
    assert (final["status"], final["failure_reason"]) == ("failed", "payment_declined")
    product = client.get("/api/v1/products/SKU-1", headers=merchant).get_json()
    assert (product["stock"], product["reserved"]) == (5, 0)
