"""Placing, reading and cancelling orders."""

from __future__ import annotations

import logging
from types import SimpleNamespace
from typing import Any

from sqlalchemy import select, update

from app.domain import orders as rules
from app.domain.errors import Conflict, NotFound
from app.domain.ids import new_id
from app.domain.orders import CatalogueItem, OrderStatus
from app.domain.ports import JobQueue
from app.extensions import db
from app.infra.models import Order, OrderEvent
from app.infra.models.base import utcnow
from app.observability.logs import Throttled
from app.observability.metrics import record_orders_created
from app.services import audit, idempotency
from app.services.audit import Actor
from app.services.events import record_event
from app.services.order_inserts import PRODUCTS_BY_SKU, insert_order_rows, writing_orders
from app.services.pagination import Page, paginate
from app.services.representations import order_representation

# Every order of a Redis outage would log this; one line per 10 s says it (with a count).
_QUEUE_FAILED = Throttled(
    logging.getLogger(__name__), "could not queue saga; recovery will pick it up"
)


def place_order(
    merchant_id: str,
    data: dict[str, Any],
    queue: JobQueue,
    request_id: str | None = None,
    idempotency_claim: int | None = None,
) -> SimpleNamespace:
    """Validate and price a new order, store it `pending` and queue its saga after the commit.

    With an `idempotency_claim` (the Idempotency-Key's record), the order's commit also marks the
    claim as having created it: should the request die before its answer is stored, a retry with
    the key is answered from this order instead of placing a second one.

    The hottest write path: the rows go in through Core statements built once (order_inserts.py;
    the ORM's unit of work cost more than the SQL), and what is returned is a snapshot of the
    values written, not a re-read.
    """
    items = data.get("items") or []
    skus = {item.get("sku") for item in items if isinstance(item.get("sku"), str)}
    with writing_orders(statements=2 if idempotency_claim else 1) as connection:
        products = connection.execute(
            PRODUCTS_BY_SKU, {"merchant_id": merchant_id, "skus": sorted(skus)}
        ).all()
        order_row, line_rows = _new_order_rows(merchant_id, data, products, request_id)
        insert_order_rows(connection, order_row, line_rows)
        if idempotency_claim is not None:
            idempotency.mark_committed(connection, idempotency_claim, 202, {
                "Location": f"/api/v1/orders/{order_row['id']}",
                "Content-Type": "application/json",
            })
    record_orders_created()
    order_id = order_row["id"]
    # After the commit: a worker must never see an order that could still roll back. If Redis is
    # down here, the order stays pending and the scheduler's recovery scan queues it later.
    try:
        queue.enqueue_saga(order_id, request_id=request_id)
    except Exception:  # noqa: BLE001 - the order is safe in the database; recovery will queue it
        _QUEUE_FAILED.warning(order_id=order_id)
    # A snapshot of what was written (not an ORM object: building one costs more than the rest of
    # the serialization): the caller renders it without a round trip.
    return SimpleNamespace(**order_row, lines=[SimpleNamespace(**row) for row in line_rows])


def order_as_placed(order_id: str, merchant_id: str | None) -> dict[str, Any]:
    """The order as its creation answered it (status `pending`, as of `order.created`): what a
    lost 202 said, for an Idempotency-Key retry to replay."""
    order = get_order(order_id, merchant_id)
    payload = order_representation(order)
    payload.update(status=str(OrderStatus.PENDING), failure_reason=None,
                   updated_at=payload["created_at"])
    return payload


def _new_order_rows(merchant_id: str, data: dict[str, Any], products, request_id: str | None):
    """Price the order from the catalogue rows and build the rows that create it (or raise)."""
    items = data.get("items") or []
    catalogue = {
        p.sku: CatalogueItem(product_id=p.id, sku=p.sku, price=p.price, currency=p.currency)
        for p in products
    }
    customer, address = data.get("customer") or {}, data.get("shipping_address") or {}
    token = (data.get("payment") or {}).get("token")
    rules.check_customer_and_address(customer, address, token)
    priced = rules.price_order(items, catalogue)
    now = utcnow()
    order_id = new_id("ord")
    order_row = {
        "id": order_id,
        "merchant_id": merchant_id,
        "status": OrderStatus.PENDING,
        "failure_reason": None,
        "currency": priced.currency,
        "total_amount": priced.total_amount,
        "customer_email": customer["email"],
        "customer_name": customer.get("name") or "",
        "shipping_address": dict(address),
        "payment_token": token,
        "request_id": request_id,
        "version": 1,
        "created_at": now,
        "updated_at": now,
    }
    line_rows = [
        {
            "order_id": order_id,
            "product_id": line.product_id,
            "sku": line.sku,
            "quantity": line.quantity,
            "unit_price": line.unit_price,
            "line_total": line.line_total,
        }
        for line in priced.lines
    ]
    return order_row, line_rows


def get_order(order_id: str, merchant_id: str | None = None) -> Order:
    """The order; a merchant asking for another merchant's order gets NotFound, not Forbidden."""
    query = select(Order).where(Order.id == order_id)
    if merchant_id is not None:
        query = query.where(Order.merchant_id == merchant_id)
    order = db.session.scalar(query)
    if order is None:
        raise NotFound("order")
    return order


def list_orders(
    merchant_id: str | None, *, status: str | None, limit: int | None, cursor: str | None
) -> Page:
    query = select(Order)
    if merchant_id is not None:
        query = query.where(Order.merchant_id == merchant_id)
    if status:
        query = query.where(Order.status == status)
    return paginate(query, Order.seq, limit, cursor)


def order_events(order_id: str, merchant_id: str | None = None) -> list[OrderEvent]:
    """The order's timeline, oldest first."""
    get_order(order_id, merchant_id)
    return list(
        db.session.scalars(
            select(OrderEvent).where(OrderEvent.order_id == order_id).order_by(OrderEvent.seq)
        )
    )


def cancel_order(
    order_id: str,
    queue: JobQueue,
    merchant_id: str | None = None,
    reason: str = "",
    actor: Actor | None = None,
) -> Order:
    """Ask the saga to stop and compensate; Conflict once the order is final. With an `actor`
    the cancel is audited here (the dashboard's interventions audit their own, with a reason)."""
    order = get_order(order_id, merchant_id)
    # Read before the update: the bulk update also refreshes the loaded order.
    already_requested = order.cancel_requested_at is not None
    already_status = str(order.status)
    now = utcnow()
    # A conditional update, so a cancel racing the saga's completion has exactly one winner.
    result = db.session.execute(
        update(Order)
        .where(Order.id == order.id, Order.status.in_(list(rules.CANCELLABLE_STATUSES)))
        .values(cancel_requested_at=now, updated_at=now, version=Order.version + 1)
    )
    if result.rowcount == 0:
        db.session.rollback()
        raise Conflict(f"the order is {order.status} already and cannot be cancelled")
    if not already_requested:
        # The status it was asked in: a webhook sent later still describes the order as it was.
        detail = {"status": already_status, **({"reason": reason} if reason else {})}
        record_event(order, "order.cancel_requested", detail)
    if actor is not None:
        audit.record(actor, "order.cancel", "order", order.id,
                     before={"status": order.status}, after={"cancel_requested": True},
                     reason=reason)
    db.session.commit()
    db.session.refresh(order)
    try:
        queue.enqueue_saga(order.id, request_id=order.request_id)
    except Exception:  # noqa: BLE001 - the request is durable; recovery re-drives the saga
        logging.getLogger(__name__).warning(
            "could not queue saga after cancel; recovery will pick it up",
            extra={"order_id": order.id},
        )
    return order
