"""The statements that create an order, built once per shape with bind parameters.

Order creation is the API's hottest write: building a statement from literal values on every
request (its cache key, and its compilation) cost more CPU than PostgreSQL spent running it. On
PostgreSQL the order, its lines, its saga steps and its first event go in as one statement
(data-modifying CTEs: one round trip instead of four; the foreign keys are checked at its end),
and in autocommit: one statement is atomic on its own, so BEGIN and COMMIT would only add two
more round trips.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from functools import lru_cache
from typing import Any

from sqlalchemy import bindparam, insert, select
from sqlalchemy.engine import Connection

from app.extensions import db
from app.infra.models import Order, OrderEvent, OrderLine, Product, SagaStep

ORDERS, LINES = Order.__table__, OrderLine.__table__
STEPS, EVENTS = SagaStep.__table__, OrderEvent.__table__

PRODUCTS_BY_SKU = select(Product.id, Product.sku, Product.price, Product.currency).where(
    Product.merchant_id == bindparam("merchant_id"),
    Product.sku.in_(bindparam("skus", expanding=True)),
)

Row = dict[str, Any]


def _binds(prefix: str, columns: tuple[str, ...]) -> dict[str, Any]:
    # An untyped bindparam in VALUES takes its column's type (JSON, UTC datetimes).
    return {column: bindparam(prefix + column) for column in columns}


@lru_cache(maxsize=128)
def _one_statement(
    order_columns: tuple[str, ...],
    line_columns: tuple[str, ...],
    lines: int,
    step_columns: tuple[str, ...],
    steps: int,
    event_columns: tuple[str, ...],
):
    # One single-row INSERT per row: SQLAlchemy cannot cache a multi-row VALUES statement, and
    # compiling this one on every request would cost more than running it.
    ctes = [insert(ORDERS).values(_binds("o_", order_columns)).cte("new_order")]
    for table, prefix, columns, count in (
        (LINES, "l", line_columns, lines),
        (STEPS, "s", step_columns, steps),
    ):
        ctes += [
            insert(table).values(_binds(f"{prefix}{i}_", columns)).cte(f"new_{prefix}{i}")
            for i in range(count)
        ]
    return insert(EVENTS).values(_binds("e_", event_columns)).add_cte(*ctes)


@contextmanager
def writing_orders() -> Iterator[Connection]:
    """The connection that creates an order, committed when the block ends without an error.

    PostgreSQL: a pooled connection in autocommit (the order is one statement, see above).
    SQLite: the session's transaction, committed at the end (or rolled back on an error).
    """
    if db.engine.dialect.name == "postgresql":
        with db.engine.connect() as connection:
            yield connection.execution_options(isolation_level="AUTOCOMMIT")
        return
    try:
        yield db.session.connection()
    except BaseException:
        db.session.rollback()
        raise
    db.session.commit()


def insert_order_rows(
    connection: Connection, order: Row, lines: list[Row], steps: list[Row], event: Row
) -> None:
    """Write a new order's rows in the connection's transaction."""
    if connection.dialect.name != "postgresql":
        for table, rows in ((ORDERS, order), (LINES, lines), (STEPS, steps), (EVENTS, event)):
            connection.execute(insert(table), rows)
        return
    statement = _one_statement(
        tuple(order), tuple(lines[0]), len(lines), tuple(steps[0]), len(steps), tuple(event)
    )
    parameters = {f"o_{k}": v for k, v in order.items()}
    parameters.update({f"e_{k}": v for k, v in event.items()})
    for prefix, rows in (("l", lines), ("s", steps)):
        for i, row in enumerate(rows):
            parameters.update({f"{prefix}{i}_{k}": v for k, v in row.items()})
    connection.execute(statement, parameters)
