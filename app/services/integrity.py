"""Reconciliation: stock, orders, saga steps, payments and refunds must tell one story.

Every check reads committed rows and reports each disagreement as one human-readable line. On
PostgreSQL the checks read one snapshot (REPEATABLE READ, read only), so orders in flight never show
up half-way between two reads; on SQLite every transaction is one snapshot already.

It scales with the number of disagreements, not of orders: the database aggregates the saga steps,
payments and shipments per order and hands back only the orders that break a rule somewhere (a
superset of the rules below), and only those are read and judged in Python. On 100,000 orders on
PostgreSQL that takes 1-2 s and 130 MB (loading every order as before took 10-20 s and 670 MB), so
the scheduler can run it every RECONCILE_INTERVAL_SECONDS.

Order lines are reconciled with their orders wholly in the database (check_order_lines): one
GROUP BY ... HAVING over orders and their lines, one filter over the lines, each handing back only
the disagreements.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence

from sqlalchemy import BigInteger, and_, case, cast, func, or_, select
from sqlalchemy.orm import aliased

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

ENDED_UNDONE = (OrderStatus.FAILED, OrderStatus.CANCELLED)
COMPENSABLE = sorted(name for name, step in STEP_BY_NAME.items() if step.compensation)
# Suspect orders are read in chunks of this many ids (SQLite's bound-parameter limit).
CHUNK = 500


def _count_if(condition):
    return func.coalesce(func.sum(case((condition, 1), else_=0)), 0)


def check_stock() -> list[str]:
    """On hand never negative; reserved == the units of reservations still open."""
    reserved_step, completed_step = aliased(SagaStep), aliased(SagaStep)

    def succeeded(step, name: str):
        return and_(step.order_id == OrderLine.order_id, step.name == name,
                    step.status == StepStatus.SUCCEEDED)

    # Open reservations: reserve_inventory succeeded and complete did not (yet).
    open_query = (
        select(OrderLine.product_id, func.sum(OrderLine.quantity))
        .join(reserved_step, succeeded(reserved_step, RESERVE_INVENTORY))
        .outerjoin(completed_step, succeeded(completed_step, COMPLETE))
        .where(completed_step.seq.is_(None))
        .group_by(OrderLine.product_id)
    )
    open_units: Counter[str] = Counter(
        {product_id: int(units) for product_id, units in db.session.execute(open_query)}
    )
    problems = []
    products = select(Product.id, Product.sku, Product.stock, Product.reserved).order_by(
        Product.seq
    )
    for product_id, sku, stock, reserved in db.session.execute(products):
        label = f"product {product_id} ({sku})"
        if stock < 0 or reserved < 0:
            problems.append(f"{label}: negative stock {stock}/{reserved} reserved")
        if reserved > stock:
            problems.append(f"{label}: reserved {reserved} exceeds stock {stock}")
        if reserved != open_units[product_id]:
            problems.append(
                f"{label}: reserved {reserved} but open reservations hold {open_units[product_id]}"
            )
    return problems


def _suspects_by_steps():
    """Orders whose saga steps may disagree with their status (see order_problems)."""
    steps = (
        select(
            SagaStep.order_id,
            func.count().label("steps"),
            _count_if(SagaStep.status != StepStatus.SUCCEEDED).label("unfinished"),
            _count_if(
                and_(SagaStep.status == StepStatus.SUCCEEDED, SagaStep.name.in_(COMPENSABLE))
            ).label("uncompensated"),
            _count_if(SagaStep.status == StepStatus.FAILED).label("failed"),
        )
        .group_by(SagaStep.order_id)
        .subquery()
    )
    return (
        select(Order.seq, Order.id)
        .outerjoin(steps, steps.c.order_id == Order.id)
        .where(
            or_(
                func.coalesce(steps.c.steps, 0) != len(STEP_BY_NAME),
                and_(Order.status == OrderStatus.COMPLETED, steps.c.unfinished > 0),
                and_(Order.status.in_(ENDED_UNDONE), steps.c.uncompensated > 0),
                and_(
                    Order.status == OrderStatus.FAILED,
                    or_(
                        Order.failure_reason.is_(None),
                        Order.failure_reason == "",
                        func.coalesce(steps.c.failed, 0) == 0,
                    ),
                ),
            )
        )
    )


def _suspects_by_payments():
    """Orders whose payments, refunds or shipments may disagree (see payment_problems)."""
    is_capture = ProviderPayment.kind == "capture"
    payments = (
        select(
            ProviderPayment.order_ref,
            _count_if(is_capture).label("captures"),
            _count_if(~is_capture).label("refunds"),
            func.min(case((is_capture, ProviderPayment.amount))).label("lowest"),
            func.max(case((is_capture, ProviderPayment.amount))).label("highest"),
        )
        .group_by(ProviderPayment.order_ref)
        .subquery()
    )
    shipments = (
        select(ProviderShipment.order_ref, func.count().label("live"))
        .where(ProviderShipment.status != "cancelled")
        .group_by(ProviderShipment.order_ref)
        .subquery()
    )
    captures = func.coalesce(payments.c.captures, 0)
    refunds = func.coalesce(payments.c.refunds, 0)
    return (
        select(Order.seq, Order.id)
        .outerjoin(payments, payments.c.order_ref == Order.id)
        .outerjoin(shipments, shipments.c.order_ref == Order.id)
        .where(
            or_(
                captures > 1,
                refunds > 1,
                refunds > captures,
                payments.c.lowest != Order.total_amount,
                payments.c.highest != Order.total_amount,
                and_(Order.status == OrderStatus.COMPLETED, or_(captures != 1, refunds > 0)),
                and_(
                    Order.status.in_(ENDED_UNDONE),
                    or_(and_(captures == 1, refunds != 1), shipments.c.live > 0),
                ),
            )
        )
    )


def _uncompensated(order_steps: dict[str, str]) -> list[str]:
    return [
        name
        for name, status in order_steps.items()
        if status == StepStatus.SUCCEEDED and STEP_BY_NAME[name].compensation
    ]


def order_problems(order, order_steps: dict[str, str]) -> list[str]:
    """A final order's status agrees with its saga steps."""
    problems = []
    label = f"order {order.id} ({order.status})"
    if len(order_steps) != len(STEP_BY_NAME):
        problems.append(f"{label}: has {len(order_steps)} saga steps, expected 4")
    if order.status == OrderStatus.COMPLETED:
        unfinished = [n for n, s in order_steps.items() if s != StepStatus.SUCCEEDED]
        if unfinished:
            problems.append(f"{label}: steps not succeeded: {', '.join(sorted(unfinished))}")
    elif order.status in ENDED_UNDONE:
        left = _uncompensated(order_steps)
        if left:
            problems.append(f"{label}: steps never compensated: {', '.join(sorted(left))}")
        if order.status == OrderStatus.FAILED:
            if not order.failure_reason:
                problems.append(f"{label}: no failure_reason")
            if StepStatus.FAILED not in order_steps.values():
                problems.append(f"{label}: no failed step")
    return problems


def payment_problems(
    order, charged: Sequence[int], refunded: Sequence[int], live_shipments: int
) -> list[str]:
    """Nobody charged twice; completed orders charged once; failed/cancelled ones refunded once.

    `charged` and `refunded` are the amounts of the order's captures and refunds."""
    problems = []
    label = f"order {order.id} ({order.status})"
    if len(charged) > 1:
        problems.append(f"{label}: charged {len(charged)} times")
    if len(refunded) > 1:
        problems.append(f"{label}: refunded {len(refunded)} times")
    if len(refunded) > len(charged):
        problems.append(f"{label}: refunded without a charge")
    for amount in charged:
        if amount != order.total_amount:
            problems.append(f"{label}: charged {amount}, order total {order.total_amount}")
    if order.status == OrderStatus.COMPLETED:
        if len(charged) != 1:
            problems.append(f"{label}: completed but charged {len(charged)} times")
        if refunded:
            problems.append(f"{label}: completed but refunded")
    elif order.status in ENDED_UNDONE:
        if len(charged) == 1 and len(refunded) != 1:
            problems.append(f"{label}: charged but refunded {len(refunded)} times")
        if live_shipments:
            problems.append(f"{label}: shipment never cancelled")
    return problems


def _chunks(ids: Sequence[str]) -> Iterable[list[str]]:
    for start in range(0, len(ids), CHUNK):
        yield list(ids[start : start + CHUNK])


def _judge(ids: Sequence[str]) -> tuple[list[str], list[str]]:
    """Read the suspect orders in full and apply the rules: (order problems, payment problems)."""
    orders, problems, payment_lines = [], [], []
    steps: dict[str, dict[str, str]] = defaultdict(dict)
    charged: dict[str, list[int]] = defaultdict(list)
    refunded: dict[str, list[int]] = defaultdict(list)
    live: Counter[str] = Counter()
    for chunk in _chunks(ids):
        orders += db.session.execute(
            select(Order.id, Order.status, Order.failure_reason, Order.total_amount).where(
                Order.id.in_(chunk)
            )
        ).all()
        rows = select(SagaStep.order_id, SagaStep.name, SagaStep.status)
        for order_id, name, status in db.session.execute(rows.where(SagaStep.order_id.in_(chunk))):
            steps[order_id][name] = status
        payments = select(ProviderPayment.order_ref, ProviderPayment.kind, ProviderPayment.amount)
        for order_id, kind, amount in db.session.execute(
            payments.where(ProviderPayment.order_ref.in_(chunk)).order_by(ProviderPayment.seq)
        ):
            (charged if kind == "capture" else refunded)[order_id].append(amount)
        live.update(
            db.session.scalars(
                select(ProviderShipment.order_ref).where(
                    ProviderShipment.order_ref.in_(chunk), ProviderShipment.status != "cancelled"
                )
            )
        )
    position = {order_id: index for index, order_id in enumerate(ids)}
    for order in sorted(orders, key=lambda row: position[row.id]):
        problems += order_problems(order, steps.get(order.id, {}))
        payment_lines += payment_problems(
            order, charged.get(order.id, []), refunded.get(order.id, []), live[order.id]
        )
    return problems, payment_lines


def check_order_lines() -> list[str]:
    """Every order has lines, each line's total is its quantity x unit price, and the line totals
    add up to the order's total (as price_order prices it: the total is the sum of the line
    totals, all integer minor units, with nothing added for shipping or tax)."""
    lines, lines_total = func.count(OrderLine.seq), func.sum(OrderLine.line_total)
    orders = (
        select(Order.seq, Order.id, Order.status, Order.total_amount, lines, lines_total)
        .outerjoin(OrderLine, OrderLine.order_id == Order.id)
        .group_by(Order.seq, Order.id, Order.status, Order.total_amount)
        .having(or_(lines == 0, lines_total != Order.total_amount))
    )
    # 64-bit: a corrupted quantity times a price must not overflow PostgreSQL's 32-bit integer.
    expected = cast(OrderLine.quantity, BigInteger) * OrderLine.unit_price
    bad_lines = (
        select(Order.seq, Order.id, Order.status, OrderLine.seq, OrderLine.sku,
               OrderLine.quantity, OrderLine.unit_price, OrderLine.line_total, expected)
        .join(Order, Order.id == OrderLine.order_id)
        .where(OrderLine.line_total != expected)
    )
    found: list[tuple[int, int, int, str]] = []  # (order seq, rank, line seq, problem)
    for seq, order_id, status, total, count, added in db.session.execute(orders):
        label = f"order {order_id} ({status})"
        if count == 0:
            found.append((seq, 0, 0, f"{label}: has no lines"))
        else:
            found.append((seq, 2, 0, f"{label}: lines add up to {added}, order total {total}"))
    for seq, order_id, status, line_seq, sku, quantity, price, line_total, product in (
        db.session.execute(bad_lines)
    ):
        found.append((seq, 1, line_seq, (
            f"order {order_id} ({status}): line {line_seq} ({sku}) total {line_total}, "
            f"quantity {quantity} x unit price {price} = {product}"
        )))
    return [problem for *_, problem in sorted(found)]


def _read_one_snapshot() -> None:
    """On PostgreSQL, make this session's next transaction one read-only snapshot."""
    if db.session().in_transaction():
        db.session.rollback()  # nothing of ours to keep: the checks only read
    if db.engine.dialect.name == "postgresql":
        db.session.connection(
            execution_options={"isolation_level": "REPEATABLE READ", "postgresql_readonly": True}
        )


def check_integrity() -> list[str]:
    """Every disagreement found, one line each; empty when all is consistent."""
    _read_one_snapshot()
    try:
        problems = check_stock()
        suspects = dict(db.session.execute(_suspects_by_steps()).all())
        suspects.update(db.session.execute(_suspects_by_payments()).all())
        order_lines, payment_lines = _judge([suspects[seq] for seq in sorted(suspects)])
        line_problems = check_order_lines()
    finally:
        db.session.rollback()
    return problems + order_lines + line_problems + payment_lines
