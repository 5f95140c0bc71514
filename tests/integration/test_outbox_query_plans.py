"""The saga's last statement marks an order's events published through the order's own index.

`published_at IS NULL` also matches every dead row version autovacuum has not removed yet, so a
plan through the unpublished-events index walks all of those (on a busy table: thousands of index
entries per saga). The statement materializes the order's events first, so no statistics can
steer PostgreSQL to that index.
"""

from __future__ import annotations

import uuid

import pytest
from sqlalchemy import create_engine, event, text

from app.infra.models.base import utcnow
from tests.conftest import PG_ADMIN_URL, migrate

OTHER_ORDERS = 600


@pytest.fixture
def busy_outbox(redis_url, tmp_path):
    """A database whose statistics say no event is unpublished while thousands of dead
    unpublished row versions remain in the index (the state between two autovacuum runs)."""
    name = f"op_outbox_{uuid.uuid4().hex[:8]}"
    admin = create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f'CREATE DATABASE "{name}"'))
    url = PG_ADMIN_URL.rsplit("/", 1)[0] + f"/{name}"
    migrate(url, redis_url, tmp_path / "migrate")
    engine = create_engine(url, isolation_level="AUTOCOMMIT")
    with engine.connect() as connection:
        connection.execute(text("ALTER TABLE order_events SET (autovacuum_enabled = false)"))
        connection.execute(text("INSERT INTO merchants (id, name, created_at) "
                                "VALUES ('mer_plan', 'Plan', now())"))
        connection.execute(text(
            "INSERT INTO orders (id, merchant_id, status, currency, total_amount, customer_email,"
            " customer_name, shipping_address, payment_token, version, created_at, updated_at)"
            " SELECT 'ord_plan' || g, 'mer_plan', 'completed', 'MYR', 100, 'a@example.com', 'A',"
            " '{}'::json, 'tok_visa', 1, now(), now() FROM generate_series(0, :n) AS g"
        ), {"n": OTHER_ORDERS})
        connection.execute(text(
            "INSERT INTO order_events (id, order_id, merchant_id, type, at, detail)"
            " SELECT 'evt_plan' || o || '_' || e, 'ord_plan' || o, 'mer_plan', 'order.created',"
            " now(), '{}'::json FROM generate_series(0, :n) AS o, generate_series(1, 5) AS e"
        ), {"n": OTHER_ORDERS})
        connection.execute(text("ANALYZE order_events"))
        connection.execute(text(
            "UPDATE order_events SET published_at = now() WHERE order_id <> 'ord_plan0'"
        ))
        connection.execute(text("ANALYZE order_events"))
    try:
        yield engine
    finally:
        engine.dispose()
        with admin.connect() as connection:
            connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def _plan(engine, statement) -> str:
    """EXPLAIN ANALYZE of the statement as SQLAlchemy sends it (expanding IN lists included)."""
    values = {
        "p_orders": ["ord_plan0"], "p_order": "ord_plan0", "p_merchant": "mer_plan",
        "p_now": utcnow(),
    }
    with engine.connect() as connection:
        connection.execute(text("BEGIN"))

        @event.listens_for(connection, "before_cursor_execute", retval=True)
        def explain(_conn, _cursor, sql, parameters, _context, _many):
            return "EXPLAIN ANALYZE " + sql, parameters

        rows = connection.execute(statement, values).all()
        event.remove(connection, "before_cursor_execute", explain)
        connection.execute(text("ROLLBACK"))
    return "\n".join(row[0] for row in rows)


def test_the_final_publish_reads_the_orders_events_not_the_unpublished_index(busy_outbox):
    from sqlalchemy import bindparam, exists, update

    from app.infra.models import OrderEvent, Webhook
    from app.services.outbox import _PUBLISH_UNSUBSCRIBED

    events, hooks = OrderEvent.__table__, Webhook.__table__
    # The premise: the plain form of the statement takes the unpublished index here.
    plain = (
        update(events)
        .where(
            events.c.order_id == bindparam("p_order"),
            events.c.published_at.is_(None),
            ~exists().where(
                hooks.c.merchant_id == bindparam("p_merchant"), hooks.c.deleted_at.is_(None)
            ),
        )
        .values(published_at=bindparam("p_now"))
    )
    assert "ix_order_events_unpublished" in _plan(busy_outbox, plain)

    plan = _plan(busy_outbox, _PUBLISH_UNSUBSCRIBED["postgresql"])
    assert "ix_order_events_order_seq" in plan
    assert "ix_order_events_unpublished" not in plan
    assert "(actual time" in plan and " rows=5 " in plan  # the order's own five events
