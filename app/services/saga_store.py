"""The saga's reads and writes, in SQLAlchemy Core on the session's connection.

The saga is the hottest write path of the system: ORM objects and their unit-of-work flushes cost
several times the SQL they send, so the saga works on plain rows here. Step updates, attempt rows
and events of a transaction are buffered and sent just before the commit: on PostgreSQL as one
statement (`saga_sql`), on SQLite one statement per row. Everything runs on `db.session`'s
connection, so `db.session.commit()` (also a test's boundary hook) commits what was sent.
"""

from __future__ import annotations

import datetime as dt
import functools
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import and_, bindparam, case, insert, or_, select, update

from app.domain.orders import OrderStatus, check_transition
from app.extensions import db
from app.infra.models import Order, OrderEvent, OrderLine, SagaStep, SagaStepAttempt
from app.infra.models.base import utcnow
from app.services import saga_sql
from app.services.events import event_row

ORDERS = Order.__table__
LINES = OrderLine.__table__
STEPS = SagaStep.__table__
ATTEMPTS = SagaStepAttempt.__table__
EVENTS = OrderEvent.__table__

ORDER_COLUMNS = [
    ORDERS.c[name]
    for name in (
        "id",
        "merchant_id",
        "status",
        "failure_reason",
        "currency",
        "total_amount",
        "shipping_address",
        "payment_token",
        "request_id",
        "cancel_requested_at",
        "created_at",
        "finished_at",
    )
]


def execute(statement, parameters=None):
    """Run a Core statement in the session's transaction."""
    # On the session's connection directly: skips the ORM's per-statement execution machinery.
    return db.session.connection().execute(statement, parameters)


def on_postgresql() -> bool:
    """Whether the session's database is PostgreSQL (some saga work has a one-statement form)."""
    return db.session.connection().dialect.name == "postgresql"


class LeaseLost(Exception):
    """Another worker drives this saga now (our lease lapsed and was taken, or a step we were
    about to settle was settled elsewhere): stop without writing anything."""


@dataclass(slots=True)
class Line:
    product_id: str
    sku: str
    quantity: int


@dataclass(slots=True)
class StepRow:
    seq: int
    name: str
    status: str
    attempts: int
    compensation_attempts: int
    idempotency_key: str
    result: dict | None
    started_at: dt.datetime | None


@dataclass(slots=True)
class SagaOrder:
    """The order as the saga sees it, kept in step with the rows it writes."""

    id: str
    merchant_id: str
    status: str
    failure_reason: str | None
    currency: str
    total_amount: int
    shipping_address: dict
    payment_token: str
    request_id: str | None
    cancel_requested_at: dt.datetime | None
    created_at: dt.datetime
    finished_at: dt.datetime | None
    lines: list[Line] = field(default_factory=list)


@dataclass
class Saga:
    """One saga run's state: the order, its steps, and this transaction's buffered writes."""

    order: SagaOrder
    steps: dict[str, StepRow]
    worker: str
    lease_seconds: int
    # True once this transaction updated the order row: from then on the row is locked by us, so
    # the cancel_requested_at we read cannot change until we commit.
    holding: bool = False
    # True once this transaction wrote a step: there is saga progress to commit.
    progressed: bool = False
    # Buffered step updates, by step seq: (the status the row must still have, new values).
    step_writes: dict[int, tuple[str, dict[str, Any]]] = field(default_factory=dict)
    attempts: list[dict[str, Any]] = field(default_factory=list)
    events: list[dict[str, Any]] = field(default_factory=list)


def _lease_values(touch: bool) -> dict[str, Any]:
    values: dict[str, Any] = {
        "lease_owner": bindparam("p_worker"),
        "lease_expires_at": bindparam("p_until"),
    }
    if touch:
        values.update(
            updated_at=bindparam("p_now"),
            version=ORDERS.c.version + 1,
            status=case(
                (
                    and_(
                        ORDERS.c.status == OrderStatus.PENDING,
                        ORDERS.c.cancel_requested_at.is_(None),
                    ),
                    OrderStatus.PROCESSING,
                ),
                else_=ORDERS.c.status,
            ),
        )
    return values


# The saga's statements are built once, with bind parameters: building a statement and computing
# its cache key costs more CPU than the database spends running it.
_ONE_ORDER = ORDERS.c.id == bindparam("p_order")
def claim_statement(touch: bool, orders):
    return (
        update(ORDERS)
        .where(
            orders,
            or_(
                ORDERS.c.lease_expires_at.is_(None),
                ORDERS.c.lease_expires_at < bindparam("p_now"),
                ORDERS.c.lease_owner == bindparam("p_worker"),
            ),
        )
        .values(**_lease_values(touch))
        .returning(*ORDER_COLUMNS)
    )


_CLAIM = {touch: claim_statement(touch, _ONE_ORDER) for touch in (False, True)}
_LINES = (
    select(LINES.c.product_id, LINES.c.sku, LINES.c.quantity)
    .where(LINES.c.order_id == bindparam("p_order"))
    .order_by(LINES.c.seq)
)
# The columns StepRow holds, in its field order (the PostgreSQL claim loads the same ones).
_STEPS = select(*[STEPS.c[name] for name in saga_sql.STEP_COLUMNS]).where(
    STEPS.c.order_id == bindparam("p_order")
)
# PostgreSQL: the claim, the lines and the steps in one round trip.
_CLAIM_AND_LOAD = {
    touch: saga_sql.claim_and_load(_CLAIM[touch], len(ORDER_COLUMNS)) for touch in (False, True)
}
_RELEASE = (
    update(ORDERS)
    .where(ORDERS.c.id == bindparam("p_order"), ORDERS.c.lease_owner == bindparam("p_worker"))
    .values(lease_owner=None, lease_expires_at=None)
)


def hold_renewal() -> dict[str, Any]:
    """What a hold writes to the order row: progress stamp, a new version, the lease renewed."""
    return {
        "updated_at": bindparam("p_now"),
        "version": ORDERS.c.version + 1,
        "lease_expires_at": bindparam("p_until"),
    }


@functools.cache
def _hold_statement(names: tuple[str, ...]):
    return (
        update(ORDERS)
        .where(ORDERS.c.id == bindparam("p_order"), ORDERS.c.lease_owner == bindparam("p_worker"))
        .values(**hold_renewal(), **{name: bindparam(f"v_{name}") for name in names})
        .returning(ORDERS.c.cancel_requested_at)
    )


@functools.cache
def _order_statement(names: tuple[str, ...]):
    """Write order fields in a transaction that already holds the row; a change the API shows,
    so a new version (ETag) and progress stamp too (a batch's hold may not have written them)."""
    return (
        update(ORDERS)
        .where(ORDERS.c.id == bindparam("p_order"))
        .values(
            updated_at=bindparam("p_now"),
            version=ORDERS.c.version + 1,
            **{name: bindparam(f"v_{name}") for name in names},
        )
    )


@functools.cache
def _step_statement(names: tuple[str, ...]):
    return (
        update(STEPS)
        .where(STEPS.c.seq == bindparam("p_seq"), STEPS.c.status == bindparam("p_expected"))
        .values(**{name: bindparam(f"v_{name}") for name in names})
    )


def _prefixed(values: dict[str, Any]) -> dict[str, Any]:
    return {f"v_{name}": value for name, value in values.items()}


def claim(order_id: str, worker: str, lease_seconds: int, hold: bool = False) -> Saga | None:
    """Take (or renew) the order's lease and load the saga; None when another worker holds it.

    The lease is written in the caller's transaction and commits with the first step; until then
    the row lock keeps other claimers waiting (they then see our lease and give up). With `hold`
    the claim is also the transaction's `hold()` (one UPDATE instead of two), and a pending order
    becomes processing unless a cancel is waiting: the caller rolls back if it ends up with
    nothing to do.
    """
    now = utcnow()
    params = {
        "p_order": order_id,
        "p_now": now,
        "p_worker": worker,
        "p_until": now + dt.timedelta(seconds=lease_seconds),
    }
    connection = db.session.connection()
    if connection.dialect.name == "postgresql":
        rows = connection.execute(_CLAIM_AND_LOAD[hold], params).all()
        return saga_from_rows(rows, worker, lease_seconds, hold) if rows else None
    row = connection.execute(_CLAIM[hold], params).first()
    if row is None:
        return None
    order = SagaOrder(**row._mapping)
    order.lines = [Line(*r) for r in connection.execute(_LINES, {"p_order": order_id})]
    steps = {r.name: StepRow(*r) for r in connection.execute(_STEPS, {"p_order": order_id})}
    return Saga(order, steps, worker, lease_seconds, holding=hold)


def saga_from_rows(rows, worker: str, lease_seconds: int, hold: bool) -> Saga:
    """A saga from the rows of claim_and_load for one order (one row per step)."""
    width = len(ORDER_COLUMNS)
    order = SagaOrder(*rows[0][:width])
    products, skus, quantities = rows[0][width : width + 3]
    if products:  # array_agg of no lines is NULL
        order.lines = [Line(*line) for line in zip(products, skus, quantities, strict=True)]
    # An outer join: an order without steps still comes back as one row, of NULL steps.
    steps = {r[width + 4]: StepRow(*r[width + 3 :]) for r in rows if r[width + 3] is not None}
    return Saga(order, steps, worker, lease_seconds, holding=hold)


def hold(saga: Saga, **values: Any) -> None:
    """Update the order row at the start of a transaction: progress stamp, version (the ETag),
    lease renewal and any `values`; re-reads cancel_requested_at. LeaseLost if the lease is gone.

    Later calls in the same transaction only write `values` (the row is ours already).
    """
    order = saga.order
    if "status" in values:
        check_transition(order.status, values["status"])
    names = tuple(sorted(values))
    if saga.holding:
        if values:
            params = {"p_order": order.id, "p_now": utcnow(), **_prefixed(values)}
            execute(_order_statement(names), params)
    else:
        now = utcnow()
        cancel = execute(
            _hold_statement(names),
            {
                "p_order": order.id,
                "p_worker": saga.worker,
                "p_now": now,
                "p_until": now + dt.timedelta(seconds=saga.lease_seconds),
                **_prefixed(values),
            },
        ).first()
        if cancel is None:
            raise LeaseLost(order.id)
        order.cancel_requested_at = cancel[0]
        saga.holding = True
    for name, value in values.items():
        setattr(order, name, value)


def set_step(saga: Saga, step: StepRow, expected: str, **values: Any) -> None:
    """Write a step's new state (sent by `flush`) only if it is still `expected` there: another
    worker that took the saga over may have moved it, and then flush raises LeaseLost and nothing
    of ours commits."""
    pending = saga.step_writes.get(step.seq)
    if pending is None:
        saga.step_writes[step.seq] = (expected, dict(values))
    else:  # a second write of the step in this transaction: still expects the first's status
        pending[1].update(values)
    saga.progressed = True
    for name in ("status", "attempts", "compensation_attempts", "result", "started_at"):
        if name in values:
            setattr(step, name, values[name])


def add_attempt(saga: Saga, **values: Any) -> None:
    saga.attempts.append({"order_id": saga.order.id, "worker": saga.worker, **values})


def add_event(saga: Saga, event_type: str, detail: dict[str, Any] | None = None) -> None:
    """An event on the order's timeline (and outbox), written with this transaction."""
    order = saga.order
    row = event_row(order.id, order.merchant_id, order.request_id, event_type, detail)
    saga.events.append({**row, "published_at": None})


_INSERT_ATTEMPTS = insert(ATTEMPTS)
_INSERT_EVENTS = insert(EVENTS)


def flush(saga: Saga) -> None:
    """Send the buffered step updates, attempt rows and events; LeaseLost if a step was no longer
    in its expected status (the caller rolls the transaction back)."""
    writes, attempts, events = saga.step_writes, saga.attempts, saga.events
    if not (writes or attempts or events):
        return
    saga.step_writes, saga.attempts, saga.events = {}, [], []
    connection = db.session.connection()
    if connection.dialect.name == "postgresql":
        statement, params = saga_sql.flush_parameters(writes, attempts, events)
        if connection.execute(statement, params).scalar() != len(writes):
            raise LeaseLost(saga.order.id)
        return
    for seq, (expected, values) in writes.items():
        result = connection.execute(
            _step_statement(tuple(sorted(values))),
            {"p_seq": seq, "p_expected": expected, **_prefixed(values)},
        )
        if result.rowcount != 1:
            raise LeaseLost(saga.order.id)
    if attempts:
        connection.execute(_INSERT_ATTEMPTS, attempts)
    if events:
        connection.execute(_INSERT_EVENTS, events)


def commit(saga: Saga) -> None:
    flush(saga)
    db.session.commit()
    saga.holding = saga.progressed = False


def rollback(saga: Saga | None) -> None:
    db.session.rollback()
    if saga is not None:
        saga.attempts, saga.events, saga.step_writes = [], [], {}
        saga.holding = saga.progressed = False


def release(order_id: str, worker: str) -> None:
    """Give the lease up (in the current transaction, committed by the caller)."""
    execute(_RELEASE, {"p_order": order_id, "p_worker": worker})
