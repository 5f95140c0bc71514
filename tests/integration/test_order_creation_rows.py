"""Placing an order writes the same rows on both databases (PostgreSQL writes them in one
statement, SQLite in four): the order, its lines, four pending saga steps and its first event."""

from __future__ import annotations

from sqlalchemy import select

from app.extensions import db
from app.infra.models import Order, OrderEvent, OrderLine, SagaStep
from tests.helpers import admin_headers, create_product, merchant_with_key, order_body


def test_a_new_order_has_its_lines_pending_steps_and_created_event(app, client):
    _, key = merchant_with_key(client, admin_headers(app, client))
    create_product(client, key, sku="SKU-1", price=1999, stock=10)
    create_product(client, key, sku="SKU-2", price=500, stock=10)
    body = order_body(items=[{"sku": "SKU-1", "quantity": 2}, {"sku": "SKU-2", "quantity": 1}])
    placed = client.post("/api/v1/orders", json=body, headers={**key, "X-Request-ID": "req-rows-1"})
    assert placed.status_code == 202
    order_id = placed.get_json()["id"]
    read = client.get(f"/api/v1/orders/{order_id}", headers=key).get_json()
    assert read["items"] == placed.get_json()["items"]  # the lines keep the order they came in
    assert [item["sku"] for item in read["items"]] == ["SKU-1", "SKU-2"]
    with app.app_context():
        order = db.session.scalar(select(Order).where(Order.id == order_id))
        assert (order.status, order.total_amount, order.version) == ("pending", 4498, 1)
        assert order.request_id == "req-rows-1" and order.updated_at == order.created_at
        lines = db.session.scalars(select(OrderLine).where(OrderLine.order_id == order_id)).all()
        assert sorted((ln.sku, ln.quantity, ln.unit_price, ln.line_total) for ln in lines) == [
            ("SKU-1", 2, 1999, 3998),
            ("SKU-2", 1, 500, 500),
        ]
        steps = db.session.scalars(
            select(SagaStep).where(SagaStep.order_id == order_id).order_by(SagaStep.position)
        ).all()
        assert [(s.name, s.position, s.status, s.attempts, s.compensation_attempts,
                 s.idempotency_key) for s in steps] == [
            (name, i, "pending", 0, 0, f"{order_id}:{name}")
            for i, name in enumerate(
                ["reserve_inventory", "capture_payment", "create_shipment", "complete"]
            )
        ]
        events = db.session.scalars(select(OrderEvent).where(OrderEvent.order_id == order_id))
        (event,) = list(events)
        assert (event.type, event.detail, event.merchant_id, event.request_id) == (
            "order.created", {"total_amount": 4498}, order.merchant_id, "req-rows-1")
        assert event.at == order.created_at and event.published_at is None
