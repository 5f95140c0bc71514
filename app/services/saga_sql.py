"""PostgreSQL statements that do several of the saga's reads or writes in one round trip.

On PostgreSQL each statement costs a round trip plus ~0.1 ms of SQLAlchemy CPU in the worker, so
the saga sends a transaction's buffered writes (step updates, attempt rows, events) as one
statement of data-modifying CTEs, and claims the order and loads its lines and steps in another.
SQLite has no data-modifying CTEs: `saga_store` sends the same work statement by statement there.

Every statement is built once per shape (how many rows of each kind, which step columns) with
bind parameters: SQLAlchemy caches its compiled form, so only the parameters change per call.
"""

from __future__ import annotations

import functools

from sqlalchemy import (
    Integer,
    bindparam,
    case,
    func,
    insert,
    literal,
    literal_column,
    select,
    true,
    update,
)
from sqlalchemy.dialects import postgresql
from sqlalchemy.dialects.postgresql import aggregate_order_by

from app.infra.models import OrderEvent, OrderLine, SagaStep, SagaStepAttempt
from app.infra.statements import chained_insert

LINES = OrderLine.__table__
STEPS = SagaStep.__table__
ATTEMPTS = SagaStepAttempt.__table__
EVENTS = OrderEvent.__table__

ATTEMPT_COLUMNS = (
    "order_id", "worker", "step", "kind", "attempt", "outcome", "error", "started_at",
    "duration_ms",
)
EVENT_COLUMNS = (
    "id", "order_id", "merchant_id", "type", "at", "detail", "request_id", "published_at",
)
STEP_COLUMNS = (
    "seq", "name", "status", "attempts", "compensation_attempts", "idempotency_key", "result",
    "started_at",
)


@functools.cache
def flush_statement(steps: tuple[tuple[str, ...], ...], attempts: int, events: int):
    """Step updates (each conditional on the step's expected status), then attempt rows, then
    events, in one statement; it returns how many step rows matched.

    The inserts form a chain (infra.statements.chained_insert), so rows get their `seq` (the step
    log's and the timeline's order) in the order they were recorded.
    """
    ctes, matched = [], []
    for i, names in enumerate(steps):
        step = (
            update(STEPS)
            .where(
                STEPS.c.seq == bindparam(f"s{i}_seq"),
                STEPS.c.status == bindparam(f"s{i}_expected"),
            )
            .values(**{n: bindparam(f"s{i}_{n}", type_=STEPS.c[n].type) for n in names})
            .returning(STEPS.c.seq)
            .cte(f"s{i}")
        )
        ctes.append(step)
        matched.append(select(func.count()).select_from(step).scalar_subquery())
    previous = None
    for table, prefix, count, columns in (
        (ATTEMPTS, "a", attempts, ATTEMPT_COLUMNS),
        (EVENTS, "e", events, EVENT_COLUMNS),
    ):
        for k in range(count):
            values = {c: bindparam(f"{prefix}{k}_{c}", type_=table.c[c].type) for c in columns}
            previous = chained_insert(table, values, f"{prefix}{k}", after=previous)
            ctes.append(previous)
    total = sum(matched[1:], matched[0]) if matched else literal(0)
    return select(total).add_cte(*ctes)


def flush_parameters(
    step_writes: dict[int, tuple[str, dict]], attempts: list[dict], events: list[dict]
) -> tuple[object, dict]:
    """The statement for this transaction's buffered writes, and its parameters."""
    params: dict = {}
    shapes = []
    for i, (seq, (expected, values)) in enumerate(step_writes.items()):
        shapes.append(tuple(sorted(values)))
        params[f"s{i}_seq"], params[f"s{i}_expected"] = seq, expected
        params.update({f"s{i}_{name}": value for name, value in values.items()})
    for prefix, rows in (("a", attempts), ("e", events)):
        for k, row in enumerate(rows):
            params.update({f"{prefix}{k}_{name}": value for name, value in row.items()})
    return flush_statement(tuple(shapes), len(attempts), len(events)), params


def claim_and_load(claim, order_columns: int):
    """The lease claim (an UPDATE ... RETURNING the order) with the order's lines (as arrays, in
    line order) and its steps (one row each) in the same statement; no row: not claimed."""
    claimed = claim.cte("claimed")
    lines = (
        select(
            *[
                func.array_agg(aggregate_order_by(LINES.c[name], LINES.c.seq))
                for name in ("product_id", "sku", "quantity")
            ]
        )
        .where(LINES.c.order_id == claimed.c.id)
        .lateral("lines")
    )
    statement = select(
        *list(claimed.c)[:order_columns], *lines.c, *[STEPS.c[n] for n in STEP_COLUMNS]
    ).select_from(
        claimed.join(lines, true()).outerjoin(STEPS, STEPS.c.order_id == claimed.c.id)
    )
    return statement


# The step columns a saga transaction may write (saga_store.set_step).
STEP_WRITE_COLUMNS = (
    "status", "attempts", "compensation_attempts", "started_at", "result", "error", "finished_at",
    "compensated_at",
)


def _unnest(arrays: dict[str, object], name: str):
    """unnest(one array parameter per column) WITH ORDINALITY, as a named FROM item."""
    params = [bindparam(f"{name}_{c}", type_=postgresql.ARRAY(t)) for c, t in arrays.items()]
    return func.unnest(*params).table_valued(*arrays, with_ordinality="ord").render_derived(name)


def _has_bit(column, bit: int):
    """column & (1 << bit) <> 0, its constants in the SQL text (not parameters)."""
    return column.op("&")(literal_column(str(1 << bit))) != literal_column("0")


def _flush_many_statement():
    """Several sagas' buffered writes in one statement of fixed shape, whatever their number
    (compiled, converted and planned once): the step updates - each conditional on the step's
    expected status, each column written only where that write sets it - then the attempt rows
    and events, inserted in list order (the rows reach each INSERT sorted, so their `seq`
    follows it). Returns how many step rows matched."""
    written = {c: STEPS.c[c].type for c in STEP_WRITE_COLUMNS}
    # Which columns each write sets, as bits (1 << position in STEP_WRITE_COLUMNS): one array
    # parameter, not eight, keeps the statement within psycopg's query cache (4,096 characters).
    writes = _unnest(
        {"seq": STEPS.c.seq.type, "expected": STEPS.c.status.type, "sets": Integer(), **written},
        "w",
    )
    steps = (
        update(STEPS)
        .where(STEPS.c.seq == writes.c.seq, STEPS.c.status == writes.c.expected)
        .values(
            {
                c: case((_has_bit(writes.c.sets, bit), writes.c[c]), else_=STEPS.c[c])
                for bit, c in enumerate(written)
            }
        )
        .returning(STEPS.c.seq)
        .cte("steps_written")
    )
    inserts = []
    for table, columns, name in ((ATTEMPTS, ATTEMPT_COLUMNS, "a"), (EVENTS, EVENT_COLUMNS, "e")):
        rows = _unnest({c: table.c[c].type for c in columns}, name)
        inserts.append(
            insert(table)
            .from_select(
                list(columns), select(*[rows.c[c] for c in columns]).order_by(rows.c.ord)
            )
            .cte(f"{name}_inserted")
        )
    return select(func.count()).select_from(steps).add_cte(*inserts)


FLUSH_MANY = _flush_many_statement()


def flush_many_parameters(
    step_writes: list[tuple[int, str, dict]], attempts: list[dict], events: list[dict]
) -> dict[str, list]:
    """FLUSH_MANY's column arrays for these (seq, expected status, values) writes and rows."""
    params: dict[str, list] = {
        "w_seq": [seq for seq, _, _ in step_writes],
        "w_expected": [expected for _, expected, _ in step_writes],
    }
    params["w_sets"] = [
        sum(1 << bit for bit, c in enumerate(STEP_WRITE_COLUMNS) if c in values)
        for _, _, values in step_writes
    ]
    for c in STEP_WRITE_COLUMNS:
        params[f"w_{c}"] = [values.get(c) for _, _, values in step_writes]
    for rows, columns, name in ((attempts, ATTEMPT_COLUMNS, "a"), (events, EVENT_COLUMNS, "e")):
        params.update({f"{name}_{c}": [row[c] for row in rows] for c in columns})
    return params
