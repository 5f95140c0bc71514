"""The saga store's reads and writes for several sagas driven together (services/saga_batch.py).

Each does for many sagas what its namesake in `saga_store` does for one, in one statement
(`= ANY(array)`, unnest arrays). PostgreSQL only: on SQLite a batch's sagas run one by one.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from typing import Any

from sqlalchemy import String, any_, bindparam, select, update
from sqlalchemy.dialects import postgresql

from app.infra.models import Product
from app.infra.models.base import utcnow
from app.services import saga_sql
from app.services.saga_store import (
    ORDER_COLUMNS,
    ORDERS,
    LeaseLost,
    Saga,
    claim_statement,
    execute,
    hold_renewal,
    saga_from_rows,
)

PRODUCTS = Product.__table__
_MANY_ORDERS = ORDERS.c.id == any_(bindparam("p_orders", type_=postgresql.ARRAY(String)))
_CLAIM_MANY_AND_LOAD = saga_sql.claim_and_load(
    claim_statement(True, _MANY_ORDERS), len(ORDER_COLUMNS)
)
_HOLD_MANY = (
    update(ORDERS)
    .where(_MANY_ORDERS, ORDERS.c.lease_owner == bindparam("p_worker"))
    .values(**hold_renewal())
    .returning(ORDERS.c.id, ORDERS.c.cancel_requested_at)
)
# A fresh lease needs no renewal: lock the rows and read the cancel requests without writing a
# new version of each order row (an order row update touches every index on orders).
_PEEK_MANY = (
    select(ORDERS.c.id, ORDERS.c.cancel_requested_at)
    .where(
        _MANY_ORDERS,
        ORDERS.c.lease_owner == bindparam("p_worker"),
        ORDERS.c.lease_expires_at > bindparam("p_fresh"),
    )
    .with_for_update()
)
# Rows are locked in one stable order (by id): two transactions never wait on each other in turn.
_LOCK_PRODUCTS = (
    select(PRODUCTS.c.id)
    .where(PRODUCTS.c.id == any_(bindparam("p_products", type_=postgresql.ARRAY(String))))
    .order_by(PRODUCTS.c.id)
    .with_for_update()
)


def claim_many(order_ids: list[str], worker: str, lease_seconds: int) -> dict[str, Saga]:
    """`claim(..., hold=True)` of several orders in one transaction; the ones claimed, by id."""
    now = utcnow()
    params = {
        "p_orders": list(order_ids),
        "p_now": now,
        "p_worker": worker,
        "p_until": now + dt.timedelta(seconds=lease_seconds),
    }
    by_order: dict[str, list] = {}
    for row in execute(_CLAIM_MANY_AND_LOAD, params):
        by_order.setdefault(row[0], []).append(row)
    return {
        order_id: saga_from_rows(rows, worker, lease_seconds, True)
        for order_id, rows in by_order.items()
    }


def hold_many(sagas: list[Saga]) -> list[Saga]:
    """What `hold()` does at the start of a transaction, for every saga not yet holding, in one
    or two statements; the sagas whose lease is gone (hold() would raise LeaseLost for them).

    Unlike hold(), a lease with more than half its time left is not renewed: the order rows are
    locked with SELECT ... FOR UPDATE and their cancel requests read, with no new row version,
    progress stamp or version bump (the order as the API shows it has not changed; completion
    and failure write the row). The others are renewed like hold() does.
    """
    waiting = {saga.order.id: saga for saga in sagas if not saga.holding}
    if not waiting:
        return []
    first = next(iter(waiting.values()))
    now = utcnow()
    params = {
        "p_orders": list(waiting),
        "p_worker": first.worker,
        "p_now": now,
        "p_fresh": now + dt.timedelta(seconds=first.lease_seconds / 2),
        "p_until": now + dt.timedelta(seconds=first.lease_seconds),
    }
    cancels = dict(execute(_PEEK_MANY, params).all())
    stale = [order_id for order_id in waiting if order_id not in cancels]
    if stale:
        cancels.update(execute(_HOLD_MANY, {**params, "p_orders": stale}).all())
    lost = []
    for order_id, saga in waiting.items():
        if order_id in cancels:
            saga.order.cancel_requested_at = cancels[order_id]
            saga.holding = True
        else:
            lost.append(saga)
    return lost


def lock_products(product_ids: set[str]) -> None:
    """Lock these product rows now, in id order: sagas driven together then update them in any
    order without deadlock."""
    if product_ids:
        execute(_LOCK_PRODUCTS, {"p_products": sorted(product_ids)})


def flush_many(sagas: list[Saga]) -> None:
    """`flush` of several sagas: one statement of fixed shape for all their step updates,
    attempts and events (saga_sql.FLUSH_MANY); LeaseLost then names no saga (the caller rolls
    the whole transaction back)."""
    writes: list[tuple[int, str, dict[str, Any]]] = []
    attempts: list[dict[str, Any]] = []
    events: list[dict[str, Any]] = []
    for saga in sagas:
        writes.extend(
            (seq, expected, values) for seq, (expected, values) in saga.step_writes.items()
        )
        attempts.extend(saga.attempts)
        events.extend(saga.events)
        saga.step_writes, saga.attempts, saga.events = {}, [], []
    if not (writes or attempts or events):
        return
    params = saga_sql.flush_many_parameters(writes, attempts, events)
    if execute(saga_sql.FLUSH_MANY, params).scalar() != len(writes):
        raise LeaseLost("a saga of the batch")


def committed(sagas: Iterable[Saga]) -> None:
    """After a commit of several sagas' work: none holds its order row any more."""
    for saga in sagas:
        saga.holding = saga.progressed = False
