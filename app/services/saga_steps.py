"""The saga's step executors and compensations: each returns the step's result (recorded and put
in the step's event) or raises a domain error; `app/services/saga.py` records the outcome.

Local steps (reserve, complete, release) only write our database, in the caller's transaction, so
they commit atomically with their recorded outcome; provider steps end our transaction before the
network call and carry the step's idempotency key.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from sqlalchemy import update
from sqlalchemy.orm.attributes import set_committed_value

from app.domain.errors import OutOfStock
from app.domain.orders import OrderStatus
from app.extensions import db
from app.infra.models import Order, Product, SagaStep
from app.infra.models.base import utcnow

if TYPE_CHECKING:
    from app.services.saga import SagaContext


def _end_transaction() -> None:
    """Never hold a database transaction (and its locks) open across a provider's network call.

    On SQLite this is also what lets the provider's own ledger write get the write lock.
    """
    db.session.commit()


def _reserve_inventory(order: Order, step: SagaStep, ctx: SagaContext) -> dict[str, Any]:
    # Products are locked in one stable order (by id), so multi-line orders never deadlock.
    for line in sorted(order.lines, key=lambda ln: ln.product_id):
        result = db.session.execute(
            update(Product)
            .where(
                Product.id == line.product_id,
                Product.stock - Product.reserved >= line.quantity,
            )
            .values(reserved=Product.reserved + line.quantity, updated_at=utcnow())
        )
        if result.rowcount != 1:
            raise OutOfStock(f"not enough stock for {line.sku}")
    return {"lines": [{"sku": ln.sku, "quantity": ln.quantity} for ln in order.lines]}


def _capture_payment(order: Order, step: SagaStep, ctx: SagaContext) -> dict[str, Any]:
    call = dict(
        order_id=order.id,
        amount=order.total_amount,
        currency=order.currency,
        token=order.payment_token,
        idempotency_key=step.idempotency_key,
    )
    _end_transaction()
    receipt = ctx.payments.capture(**call)
    return {
        "payment_id": receipt.payment_id,
        "amount": receipt.amount,
        "currency": receipt.currency,
    }


def _create_shipment(order: Order, step: SagaStep, ctx: SagaContext) -> dict[str, Any]:
    call = dict(
        order_id=order.id,
        address=dict(order.shipping_address),
        idempotency_key=step.idempotency_key,
    )
    _end_transaction()
    receipt = ctx.shipping.create_shipment(**call)
    return {"shipment_id": receipt.shipment_id}


def _complete(order: Order, step: SagaStep, ctx: SagaContext) -> dict[str, Any] | None:
    now = utcnow()
    # Conditional on no cancel request: a cancel racing completion has exactly one winner.
    result = db.session.execute(
        update(Order)
        .where(
            Order.id == order.id,
            Order.status == OrderStatus.PROCESSING,
            Order.cancel_requested_at.is_(None),
        )
        .values(
            status=OrderStatus.COMPLETED, finished_at=now, updated_at=now, version=Order.version + 1
        )
        .execution_options(synchronize_session=False)
    )
    if result.rowcount != 1:
        return None
    for name, value in (("status", OrderStatus.COMPLETED), ("finished_at", now)):
        set_committed_value(order, name, value)
    set_committed_value(order, "version", (order.version or 0) + 1)
    for line in sorted(order.lines, key=lambda ln: ln.product_id):
        # The reserved units leave the warehouse: on-hand and reserved drop together.
        db.session.execute(
            update(Product)
            .where(Product.id == line.product_id)
            .values(
                stock=Product.stock - line.quantity,
                reserved=Product.reserved - line.quantity,
                updated_at=now,
            )
        )
    return {}


def _release_inventory(order: Order, step: SagaStep, ctx: SagaContext) -> dict[str, Any]:
    for line in sorted(order.lines, key=lambda ln: ln.product_id):
        db.session.execute(
            update(Product)
            .where(Product.id == line.product_id)
            .values(reserved=Product.reserved - line.quantity, updated_at=utcnow())
        )
    return {"lines": [{"sku": ln.sku, "quantity": ln.quantity} for ln in order.lines]}


def _refund_payment(order: Order, step: SagaStep, ctx: SagaContext) -> dict[str, Any]:
    call = dict(
        payment_id=step.result["payment_id"],
        amount=step.result["amount"],
        currency=step.result["currency"],
        idempotency_key=f"{order.id}:refund_payment",
    )
    _end_transaction()
    receipt = ctx.payments.refund(**call)
    return {"refund_id": receipt.payment_id, "amount": receipt.amount}


def _cancel_shipment(order: Order, step: SagaStep, ctx: SagaContext) -> dict[str, Any]:
    shipment_id = step.result["shipment_id"]
    call = dict(shipment_id=shipment_id, idempotency_key=f"{order.id}:cancel_shipment")
    _end_transaction()
    ctx.shipping.cancel_shipment(**call)
    return {"shipment_id": shipment_id}


EXECUTORS = {
    "reserve_inventory": _reserve_inventory,
    "capture_payment": _capture_payment,
    "create_shipment": _create_shipment,
    "complete": _complete,
}
COMPENSATIONS = {
    "release_inventory": _release_inventory,
    "refund_payment": _refund_payment,
    "cancel_shipment": _cancel_shipment,
}
