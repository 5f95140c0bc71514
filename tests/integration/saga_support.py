"""Helpers shared by the saga and webhook tests: merchants, the provider ledger, waiting."""

from __future__ import annotations

import time

from sqlalchemy import func, select

from tests.helpers import admin_headers, create_product, merchant_with_key

FINAL = {"completed", "failed", "cancelled"}


class Interrupted(Exception):
    """Raised from a step-boundary hook: the in-process stand-in for a killed worker."""


def merchant_with_stock(app, client, stock: int = 10, sku: str = "SKU-1", price: int = 1999):
    """A merchant API key whose catalogue holds one product with `stock` units."""
    admin = admin_headers(app, client)
    _, headers = merchant_with_key(client, admin)
    create_product(client, headers, sku=sku, price=price, stock=stock)
    return headers


def saga_context(app, **changes):
    """The context a worker would build, without sleeping between retries."""
    from app.services.saga import SagaContext

    values = {
        "payments": app.extensions["payment_provider"],
        "shipping": app.extensions["shipping_provider"],
        "worker": "test-worker",
        "sleep": lambda _seconds: None,
        **changes,
    }
    return SagaContext(**values)


def run_saga_inline(app, order_id: str, **changes) -> str:
    """Drive a saga in this process (the worker's code path, minus RQ)."""
    from app.extensions import db
    from app.services.saga import run_saga

    with app.app_context():
        try:
            return run_saga(order_id, saga_context(app, **changes))
        finally:
            db.session.remove()


def crash_at(point: str):
    """A boundary hook that 'kills' the saga the first time it reaches `point`."""
    fired = []

    def hook(_order_id, reached):
        if reached == point and not fired:
            fired.append(reached)
            raise Interrupted(point)

    return hook


def ledger(app, order_id: str) -> dict[str, int]:
    """What the simulated payment provider recorded for an order: captures and refunds."""
    from app.extensions import db
    from app.infra.models import ProviderPayment

    with app.app_context():
        query = (
            select(ProviderPayment.kind, func.count())
            .where(ProviderPayment.order_ref == order_id)
            .group_by(ProviderPayment.kind)
        )
        counts = dict(db.session.execute(query).all())
    return {"capture": counts.get("capture", 0), "refund": counts.get("refund", 0)}


def stock_of(app, sku: str = "SKU-1") -> tuple[int, int]:
    from app.extensions import db
    from app.infra.models import Product

    with app.app_context():
        product = db.session.scalar(select(Product).where(Product.sku == sku))
        return product.stock, product.reserved


def statuses(app, order_ids) -> dict[str, tuple[str, str | None]]:
    from app.extensions import db
    from app.infra.models import Order

    with app.app_context():
        rows = db.session.execute(
            select(Order.id, Order.status, Order.failure_reason).where(Order.id.in_(order_ids))
        ).all()
        db.session.remove()
    return {order_id: (status, reason) for order_id, status, reason in rows}


def wait_until_final(app, order_ids, timeout: float = 60) -> dict[str, tuple[str, str | None]]:
    """Poll the database (not the rate-limited API) until every order is final or time is up."""
    deadline = time.monotonic() + timeout
    while True:
        current = statuses(app, order_ids)
        if all(status in FINAL for status, _ in current.values()) or time.monotonic() > deadline:
            return current
        time.sleep(0.25)


def integrity_problems(app) -> list[str]:
    from app.services.integrity import check_integrity

    with app.app_context():
        return check_integrity()


def event_types(client, headers, order_id: str) -> list[str]:
    events = client.get(f"/api/v1/orders/{order_id}/events", headers=headers).get_json()
    return [event["type"] for event in events["data"]]
