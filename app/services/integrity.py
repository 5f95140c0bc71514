"""Reconciliation: stock, orders, saga steps, payments and refunds must tell one story.

Run on a quiet system (or accept that an order in flight may show up between two reads): every
check reads committed rows and reports each disagreement as one human-readable line.
"""

from __future__ import annotations

from collections import Counter, defaultdict

from sqlalchemy import select

from app.domain.orders import OrderStatus
from app.domain.saga import COMPLETE, RESERVE_INVENTORY, STEP_BY_NAME, StepStatus
from app.extensions import db
from app.infra.models import (
    Order,
    OrderLine,
    Product,
    ProviderPayment,
    ProviderShipment,
    SagaStep,
)


def _steps_by_order() -> dict[str, dict[str, str]]:
    steps: dict[str, dict[str, str]] = defaultdict(dict)
    for order_id, name, status in db.session.execute(
        select(SagaStep.order_id, SagaStep.name, SagaStep.status)
    ):
        steps[order_id][name] = status
    return steps


def check_stock(steps: dict[str, dict[str, str]]) -> list[str]:
    """On hand never negative; reserved == the units of reservations still open."""
    open_units: Counter[str] = Counter()
    for order_id, product_id, quantity in db.session.execute(
        select(OrderLine.order_id, OrderLine.product_id, OrderLine.quantity)
    ):
        order_steps = steps.get(order_id, {})
        if (
            order_steps.get(RESERVE_INVENTORY) == StepStatus.SUCCEEDED
            and order_steps.get(COMPLETE) != StepStatus.SUCCEEDED
        ):
            open_units[product_id] += quantity
    problems = []
    for product in db.session.scalars(select(Product).order_by(Product.seq)):
        label = f"product {product.id} ({product.sku})"
        if product.stock < 0 or product.reserved < 0:
            problems.append(f"{label}: negative stock {product.stock}/{product.reserved} reserved")
        if product.reserved > product.stock:
            problems.append(f"{label}: reserved {product.reserved} exceeds stock {product.stock}")
        if product.reserved != open_units[product.id]:
            problems.append(
                f"{label}: reserved {product.reserved} but open reservations hold "
                f"{open_units[product.id]}"
            )
    return problems


def _uncompensated(order_steps: dict[str, str]) -> list[str]:
    return [
        name
        for name, status in order_steps.items()
        if status == StepStatus.SUCCEEDED and STEP_BY_NAME[name].compensation
    ]


def check_orders(orders: list[Order], steps: dict[str, dict[str, str]]) -> list[str]:
    """A final order's status agrees with its saga steps."""
    problems = []
    for order in orders:
        order_steps = steps.get(order.id, {})
        label = f"order {order.id} ({order.status})"
        if len(order_steps) != len(STEP_BY_NAME):
            problems.append(f"{label}: has {len(order_steps)} saga steps, expected 4")
        if order.status == OrderStatus.COMPLETED:
            unfinished = [n for n, s in order_steps.items() if s != StepStatus.SUCCEEDED]
            if unfinished:
                problems.append(f"{label}: steps not succeeded: {', '.join(sorted(unfinished))}")
        elif order.status in (OrderStatus.FAILED, OrderStatus.CANCELLED):
            left = _uncompensated(order_steps)
            if left:
                problems.append(f"{label}: steps never compensated: {', '.join(sorted(left))}")
            if order.status == OrderStatus.FAILED:
                if not order.failure_reason:
                    problems.append(f"{label}: no failure_reason")
                if StepStatus.FAILED not in order_steps.values():
                    problems.append(f"{label}: no failed step")
    return problems


def check_payments(orders: list[Order]) -> list[str]:
    """Nobody charged twice; completed orders charged once; failed/cancelled ones refunded once."""
    captures: dict[str, list[ProviderPayment]] = defaultdict(list)
    refunds: dict[str, list[ProviderPayment]] = defaultdict(list)
    for payment in db.session.scalars(select(ProviderPayment)):
        (captures if payment.kind == "capture" else refunds)[payment.order_ref].append(payment)
    live_shipments = Counter(
        db.session.scalars(
            select(ProviderShipment.order_ref).where(ProviderShipment.status != "cancelled")
        )
    )
    problems = []
    for order in orders:
        label = f"order {order.id} ({order.status})"
        charged, refunded = captures.get(order.id, []), refunds.get(order.id, [])
        if len(charged) > 1:
            problems.append(f"{label}: charged {len(charged)} times")
        if len(refunded) > 1:
            problems.append(f"{label}: refunded {len(refunded)} times")
        if len(refunded) > len(charged):
            problems.append(f"{label}: refunded without a charge")
        for capture in charged:
            if capture.amount != order.total_amount:
                problems.append(
                    f"{label}: charged {capture.amount}, order total {order.total_amount}"
                )
        if order.status == OrderStatus.COMPLETED:
            if len(charged) != 1:
                problems.append(f"{label}: completed but charged {len(charged)} times")
            if refunded:
                problems.append(f"{label}: completed but refunded")
        elif order.status in (OrderStatus.FAILED, OrderStatus.CANCELLED):
            if len(charged) == 1 and len(refunded) != 1:
                problems.append(f"{label}: charged but refunded {len(refunded)} times")
            if live_shipments.get(order.id):
                problems.append(f"{label}: shipment never cancelled")
    return problems


def check_integrity() -> list[str]:
    """Every disagreement found, one line each; empty when all is consistent."""
    steps = _steps_by_order()
    orders = list(db.session.scalars(select(Order).order_by(Order.seq)))
    problems = check_stock(steps) + check_orders(orders, steps) + check_payments(orders)
    db.session.rollback()
    return problems
