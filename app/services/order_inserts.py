"""The rows that create an order - the order, its lines, its saga steps (all pending) and its
`order.created` event - and the statements that write them, built once per shape.

Order creation is the API's hottest write: building a statement from literal values on every
request (its cache key, its compilation) cost more CPU than PostgreSQL spent running it. On
PostgreSQL the rows go in as one statement (data-modifying CTEs: one round trip instead of four;
the foreign keys are checked at its end), in autocommit: one statement is atomic on its own, so
BEGIN and COMMIT would only add two more round trips. What every order has in common (its saga
steps, their initial state, the event type) is written as SQL literals, and values repeated
across rows share one parameter: under 50 parameters psycopg caches the statement's conversion.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from functools import lru_cache
from typing import Any

from sqlalchemy import Integer, String, bindparam, insert, literal_column, select
from sqlalchemy.engine import Connection

from app.domain.saga import STEPS as SAGA_STEPS
from app.extensions import db
from app.infra.models import Order, OrderEvent, OrderLine, Product, SagaStep
from app.infra.statements import chained_insert
from app.services.events import event_row

ORDERS, LINES = Order.__table__, OrderLine.__table__
STEPS, EVENTS = SagaStep.__table__, OrderEvent.__table__
CREATED_EVENT = "order.created"

PRODUCTS_BY_SKU = select(Product.id, Product.sku, Product.price, Product.currency).where(
    Product.merchant_id == bindparam("merchant_id"),
    Product.sku.in_(bindparam("skus", expanding=True)),
)

Row = dict[str, Any]


def step_rows(order_id: str) -> list[Row]:
    """The saga's steps of a new order, in order, all pending."""
    return [
        {
            "order_id": order_id,
            "name": step.name,
            "position": position,
            "status": "pending",
            "attempts": 0,
            "compensation_attempts": 0,
            "idempotency_key": f"{order_id}:{step.name}",
        }
        for position, step in enumerate(SAGA_STEPS)
    ]


@contextmanager
def writing_orders(statements: int = 1) -> Iterator[Connection]:
    """The connection that creates an order, committed when the block ends without an error.

    PostgreSQL: a pooled connection in autocommit when the order is its one statement (see
    above); with more `statements` (an idempotency claim marked with it), one transaction.
    SQLite: the session's transaction, committed at the end (or rolled back on an error).
    """
    if db.engine.dialect.name == "postgresql":
        if statements > 1:
            with db.engine.begin() as connection:
                yield connection
            return
        with db.engine.connect() as connection:
            yield connection.execution_options(isolation_level="AUTOCOMMIT")
        return
    try:
        yield db.session.connection()
    except BaseException:
        db.session.rollback()
        raise
    db.session.commit()


def insert_order_rows(connection: Connection, order: Row, lines: list[Row]) -> None:
    """Write a new order (its lines, saga steps and first event with it) in the connection's
    transaction."""
    event = event_row(
        order["id"],
        order["merchant_id"],
        order["request_id"],
        CREATED_EVENT,
        {"total_amount": order["total_amount"]},
        at=order["created_at"],
    )
    if connection.dialect.name != "postgresql":
        for table, rows in (
            (ORDERS, order),
            (LINES, lines),
            (STEPS, step_rows(order["id"])),
            (EVENTS, event),
        ):
            connection.execute(insert(table), rows)
        return
    parameters = {f"o_{k}": v for k, v in order.items()}
    parameters.update({"e_id": event["id"], "e_detail": event["detail"]})
    for i, line in enumerate(lines):
        parameters.update({f"l{i}_{k}": v for k, v in line.items() if k != "order_id"})
    connection.execute(_one_statement(tuple(order), tuple(lines[0]), len(lines)), parameters)


def _sql_literal(value: str | int) -> Any:
    # Only our own constants (step names, statuses, numbers) are ever rendered this way.
    if isinstance(value, str):
        return literal_column(f"'{value}'", String)
    return literal_column(str(value), Integer)


@lru_cache(maxsize=64)
def _one_statement(order_columns: tuple[str, ...], line_columns: tuple[str, ...], lines: int):
    # An untyped bindparam in VALUES takes its column's type (JSON, UTC datetimes). One
    # single-row INSERT per row: SQLAlchemy cannot cache a multi-row VALUES statement.
    order_id = bindparam("o_id", type_=String)
    ctes = [
        insert(ORDERS)
        .values({column: bindparam(f"o_{column}") for column in order_columns})
        .cte("new_order")
    ]
    line = None
    for i in range(lines):  # chained: the lines get their seq (the order's item order) in order
        columns = [c for c in line_columns if c != "order_id"]
        values = {c: bindparam(f"l{i}_{c}", type_=LINES.c[c].type) for c in columns}
        line = chained_insert(LINES, {"order_id": order_id, **values}, f"new_line{i}", after=line)
        ctes.append(line)
    for i, step in enumerate(step_rows("")):
        literals = {
            k: _sql_literal(v) for k, v in step.items() if k not in ("order_id", "idempotency_key")
        }
        key = order_id + _sql_literal(step["idempotency_key"])  # "<order id>:<step>"
        ctes.append(
            insert(STEPS)
            .values(order_id=order_id, idempotency_key=key, **literals)
            .cte(f"new_step{i}")
        )
    event = insert(EVENTS).values(
        id=bindparam("e_id"),
        order_id=order_id,
        merchant_id=bindparam("o_merchant_id"),
        type=_sql_literal(CREATED_EVENT),
        at=bindparam("o_created_at"),
        detail=bindparam("e_detail"),
        request_id=bindparam("o_request_id"),
    )
    return event.add_cte(*ctes)
