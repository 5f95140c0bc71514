"""The saga's step executors and compensations: each returns the step's result (recorded and put
in the step's event) or raises a domain error; `app/services/saga.py` records the outcome.

Local steps (reserve, complete, release) only write our database, in the caller's transaction, so
they commit atomically with their recorded outcome; they leave nothing behind when they raise or
decline, so the caller never has to roll back the other work of its transaction. Provider steps
run outside any transaction (the caller commits before them) and carry the step's idempotency key.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from sqlalchemy import Integer, String, any_, bindparam, func, select, update
from sqlalchemy.dialects import postgresql

from app.domain.errors import OutOfStock
from app.domain.orders import OrderStatus
from app.infra.models import Product
from app.infra.models.base import utcnow
from app.services.saga_store import ORDERS, SagaOrder, StepRow, execute, on_postgresql

if TYPE_CHECKING:
    from app.services.saga import SagaContext

PRODUCTS = Product.__table__
# Steps and compensations whose whole effect is in our database.
LOCAL = frozenset({"reserve_inventory", "complete", "release_inventory"})


# Built once (see saga_store): the saga runs these for every order.
_RESERVE = (
    update(PRODUCTS)
    .where(
        PRODUCTS.c.id == bindparam("p_product"),
        PRODUCTS.c.stock - PRODUCTS.c.reserved >= bindparam("p_quantity"),
    )
    .values(reserved=PRODUCTS.c.reserved + bindparam("p_quantity"), updated_at=bindparam("p_now"))
)
_MOVE = (
    update(PRODUCTS)
    .where(PRODUCTS.c.id == bindparam("p_product"))
    .values(
        stock=PRODUCTS.c.stock + bindparam("p_stock"),
        reserved=PRODUCTS.c.reserved + bindparam("p_reserved"),
        updated_at=bindparam("p_now"),
    )
)


def _completion(orders):
    """Complete the orders matched by `orders` that are processing with no cancel request: a
    cancel racing completion has exactly one winner. A new version: the API shows the change."""
    return (
        update(ORDERS)
        .where(
            orders,
            ORDERS.c.status == OrderStatus.PROCESSING,
            ORDERS.c.cancel_requested_at.is_(None),
        )
        .values(
            status=OrderStatus.COMPLETED,
            finished_at=bindparam("p_now"),
            updated_at=bindparam("p_now"),
            version=ORDERS.c.version + 1,
        )
    )


_COMPLETE = _completion(ORDERS.c.id == bindparam("p_order"))

# PostgreSQL, one-line orders (the usual case): the completion and its stock move in one
# statement, one round trip less; the stock moves only if the completion matched.
_COMPLETED = _COMPLETE.returning(ORDERS.c.id).cte("completed")
_COMPLETE_ONE_LINE = (
    update(PRODUCTS)
    .where(PRODUCTS.c.id == bindparam("p_product"), select(_COMPLETED.c.id).exists())
    .values(
        stock=PRODUCTS.c.stock - bindparam("p_quantity"),
        reserved=PRODUCTS.c.reserved - bindparam("p_quantity"),
        updated_at=bindparam("p_now"),
    )
    .add_cte(_COMPLETED)
)


def _move_stock(product_id: str, quantity: int, *, stock: int = 0, reserved: int = 0) -> None:
    execute(
        _MOVE,
        {
            "p_product": product_id,
            "p_stock": stock * quantity,
            "p_reserved": reserved * quantity,
            "p_now": utcnow(),
        },
    )


def _reserve_inventory(order: SagaOrder, step: StepRow, ctx: SagaContext) -> dict[str, Any]:
    reserved = []
    # Products are locked in one stable order (by id), so multi-line orders never deadlock.
    for line in sorted(order.lines, key=lambda ln: ln.product_id):
        result = execute(
            _RESERVE, {"p_product": line.product_id, "p_quantity": line.quantity, "p_now": utcnow()}
        )
        if result.rowcount != 1:
            # Undo this attempt's earlier lines here: the transaction holds other saga work.
            for done in reserved:
                _move_stock(done.product_id, done.quantity, reserved=-1)
            raise OutOfStock(f"not enough stock for {line.sku}")
        reserved.append(line)
    return _lines_result(order)


def _lines_result(order: SagaOrder) -> dict[str, Any]:
    """What a reservation or a release records (in its step and its event)."""
    return {"lines": [{"sku": ln.sku, "quantity": ln.quantity} for ln in order.lines]}


def _capture_payment(order: SagaOrder, step: StepRow, ctx: SagaContext) -> dict[str, Any]:
    receipt = ctx.payments.capture(
        order_id=order.id,
        amount=order.total_amount,
        currency=order.currency,
        token=order.payment_token,
        idempotency_key=step.idempotency_key,
    )
    return {
        "payment_id": receipt.payment_id,
        "amount": receipt.amount,
        "currency": receipt.currency,
    }


def _create_shipment(order: SagaOrder, step: StepRow, ctx: SagaContext) -> dict[str, Any]:
    receipt = ctx.shipping.create_shipment(
        order_id=order.id,
        address=dict(order.shipping_address),
        idempotency_key=step.idempotency_key,
    )
    return {"shipment_id": receipt.shipment_id}


def _complete(order: SagaOrder, step: StepRow, ctx: SagaContext) -> dict[str, Any] | None:
    now = utcnow()
    if len(order.lines) == 1 and on_postgresql():
        (line,) = order.lines
        params = {
            "p_order": order.id, "p_now": now, "p_product": line.product_id,
            "p_quantity": line.quantity,
        }
        # No row: the completion did not match (the product row exists: a foreign key).
        if execute(_COMPLETE_ONE_LINE, params).rowcount != 1:
            return None
        order.status, order.finished_at = OrderStatus.COMPLETED, now
        return {}
    if execute(_COMPLETE, {"p_order": order.id, "p_now": now}).rowcount != 1:
        return None
    order.status, order.finished_at = OrderStatus.COMPLETED, now
    for line in sorted(order.lines, key=lambda ln: ln.product_id):
        # The reserved units leave the warehouse: on-hand and reserved drop together.
        _move_stock(line.product_id, line.quantity, stock=-1, reserved=-1)
    return {}


def _release_inventory(order: SagaOrder, step: StepRow, ctx: SagaContext) -> dict[str, Any]:
    for line in sorted(order.lines, key=lambda ln: ln.product_id):
        _move_stock(line.product_id, line.quantity, reserved=-1)
    return _lines_result(order)


def _refund_payment(order: SagaOrder, step: StepRow, ctx: SagaContext) -> dict[str, Any]:
    receipt = ctx.payments.refund(
        payment_id=step.result["payment_id"],
        amount=step.result["amount"],
        currency=step.result["currency"],
        idempotency_key=f"{order.id}:refund_payment",
    )
    return {"refund_id": receipt.payment_id, "amount": receipt.amount}


def _cancel_shipment(order: SagaOrder, step: StepRow, ctx: SagaContext) -> dict[str, Any]:
    shipment_id = step.result["shipment_id"]
    ctx.shipping.cancel_shipment(
        shipment_id=shipment_id, idempotency_key=f"{order.id}:cancel_shipment"
    )
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


# Sagas driven together (services/saga_batch.py, PostgreSQL): one kind of local step for several
# orders in a couple of statements, the product rows already locked by the batch.
_ANY_PRODUCT = PRODUCTS.c.id == any_(bindparam("p_products", type_=postgresql.ARRAY(String)))
_AVAILABLE = select(PRODUCTS.c.id, PRODUCTS.c.stock - PRODUCTS.c.reserved).where(_ANY_PRODUCT)
_MOVES = (
    func.unnest(
        bindparam("p_products", type_=postgresql.ARRAY(String)),
        bindparam("p_stock", type_=postgresql.ARRAY(Integer)),
        bindparam("p_reserved", type_=postgresql.ARRAY(Integer)),
    )
    .table_valued("product_id", "stock", "reserved")
    .render_derived("moves")
)
_MOVE_MANY = (
    update(PRODUCTS)
    .where(PRODUCTS.c.id == _MOVES.c.product_id)
    .values(
        stock=PRODUCTS.c.stock + _MOVES.c.stock,
        reserved=PRODUCTS.c.reserved + _MOVES.c.reserved,
        updated_at=bindparam("p_now"),
    )
)
_COMPLETE_MANY = _completion(
    ORDERS.c.id == any_(bindparam("p_orders", type_=postgresql.ARRAY(String)))
).returning(ORDERS.c.id)


def _move_many(quantities: dict[str, int], *, stock: int = 0, reserved: int = 0) -> None:
    products = sorted(quantities)
    execute(
        _MOVE_MANY,
        {
            "p_products": products,
            "p_stock": [stock * quantities[p] for p in products],
            "p_reserved": [reserved * quantities[p] for p in products],
            "p_now": utcnow(),
        },
    )


def _quantities(orders: list[SagaOrder]) -> dict[str, int]:
    """Units per product over all these orders' lines."""
    totals: dict[str, int] = {}
    for order in orders:
        for line in order.lines:
            totals[line.product_id] = totals.get(line.product_id, 0) + line.quantity
    return totals


def reserve_many(orders: list[SagaOrder]) -> list[dict[str, Any]] | None:
    """Reserve all these orders' lines at once if the stock covers every one of them (each
    order's result, as `_reserve_inventory` gives it); None if it does not: then the orders
    reserve one by one, in order, and the late ones may run out."""
    need = _quantities(orders)
    available = dict(execute(_AVAILABLE, {"p_products": sorted(need)}).all())
    if any(available.get(product, -1) < units for product, units in need.items()):
        return None
    _move_many(need, reserved=1)
    return [_lines_result(order) for order in orders]


def complete_many(orders: list[SagaOrder]) -> list[dict[str, Any] | None]:
    """`_complete` of several orders: each completes unless a cancel got there first (None)."""
    now = utcnow()
    ids = [order.id for order in orders]
    completed = set(execute(_COMPLETE_MANY, {"p_orders": ids, "p_now": now}).scalars())
    done = [order for order in orders if order.id in completed]
    if done:
        # The reserved units leave the warehouse: on-hand and reserved drop together.
        _move_many(_quantities(done), stock=-1, reserved=-1)
    for order in done:
        order.status, order.finished_at = OrderStatus.COMPLETED, now
    return [{} if order.id in completed else None for order in orders]


# The local steps that have a form for several orders at once.
MANY = {"reserve_inventory": reserve_many, "complete": complete_many}
