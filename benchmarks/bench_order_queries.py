"""EXPLAIN ANALYZE of the order list and filter queries on PostgreSQL with 100,000 orders.

Builds a scratch database with the real migrations, seeds merchants and orders (statuses, failure
reasons and creation times spread like production), runs the very statements the API list, the
dashboard filters and the SLO/metrics scans issue (captured from the services, not re-typed), and
prints each plan. The result says, per query, whether it reads an index or scans the table.

    .venv/bin/python -m benchmarks --only bench_order_queries [--orders 100000]
"""

from __future__ import annotations

import datetime as dt
import os
import tempfile
import time
import uuid
from pathlib import Path

from sqlalchemy import create_engine, event, text

PG_ADMIN_URL = os.environ.get(
    "BENCH_POSTGRES_URL",
    os.environ.get("TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"),
)
REDIS_URL = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/15")
MERCHANTS = 20


def add_arguments(parser) -> None:
    parser.add_argument("--orders", type=int, default=100_000, help="orders to seed for EXPLAIN")


def _seed(connection, merchant_ids: list[str], orders: int) -> None:
    connection.execute(
        text(
            """
            INSERT INTO orders (id, merchant_id, status, failure_reason, currency, total_amount,
                customer_email, customer_name, shipping_address, payment_token, request_id,
                version, created_at, updated_at, finished_at)
            SELECT 'ord_bench' || lpad(g::text, 9, '0'),
                   (CAST(:merchants AS text[]))[1 + abs(hashtext(g::text)) % :merchant_count],
                   s.status,
                   CASE WHEN s.status = 'failed'
                        THEN (ARRAY['payment_declined','out_of_stock','payment_error'])[1 + g % 3]
                   END,
                   'MYR', 1000 + g % 9000,
                   'customer' || (g % 40000) || '@example.com', 'Customer',
                   '{"line1": "1 Jalan Ampang", "city": "KL", "postal_code": "50450",
                     "country": "MY"}'::json,
                   'tok_visa', NULL, 3,
                   c.created_at, c.created_at + interval '2 seconds',
                   CASE WHEN s.status IN ('completed', 'failed', 'cancelled')
                        THEN c.created_at + interval '2 seconds' END
            FROM generate_series(1, :orders) AS g
            CROSS JOIN LATERAL (SELECT CASE
                WHEN g % 100 < 85 THEN 'completed' WHEN g % 100 < 93 THEN 'failed'
                WHEN g % 100 < 96 THEN 'cancelled' WHEN g % 100 < 98 THEN 'processing'
                ELSE 'pending' END AS status) AS s
            CROSS JOIN LATERAL (SELECT now() - interval '60 days'
                + (g::float / :orders) * interval '60 days' AS created_at) AS c
            """
        ),
        {"merchants": merchant_ids, "merchant_count": len(merchant_ids), "orders": orders},
    )
    connection.execute(text("ANALYZE"))


def _capture(engine, call) -> list[tuple[str, object]]:
    """The SELECTs on orders that `call()` sends, with their parameters."""
    seen: list[tuple[str, object]] = []

    def listener(conn, cursor, statement, parameters, context, executemany):
        if statement.lstrip().upper().startswith("SELECT") and "orders" in statement:
            seen.append((statement, parameters))

    event.listen(engine, "before_cursor_execute", listener)
    try:
        call()
    finally:
        event.remove(engine, "before_cursor_execute", listener)
    return seen


def _queries(app, merchant_id: str):
    from app.services import dashboard, orders, slo
    from app.services.dashboard import OrderFilters

    today = dt.date.today()
    last_page = orders.list_orders(merchant_id, status=None, limit=50, cursor=None)
    return {
        "api: merchant's orders, newest first": lambda: orders.list_orders(
            merchant_id, status=None, limit=50, cursor=None
        ),
        "api: merchant's orders, next page (cursor)": lambda: orders.list_orders(
            merchant_id, status=None, limit=50, cursor=last_page.next_cursor
        ),
        "api: merchant's failed orders": lambda: orders.list_orders(
            merchant_id, status="failed", limit=50, cursor=None
        ),
        "api: all orders (admin)": lambda: orders.list_orders(
            None, status=None, limit=50, cursor=None
        ),
        "dashboard: status=pending": lambda: dashboard.search_orders(
            OrderFilters(status="pending"), None
        ),
        "dashboard: failed + payment_declined": lambda: dashboard.search_orders(
            OrderFilters(status="failed", failure_reason="payment_declined"), None
        ),
        "dashboard: one day (created_from = created_to)": lambda: dashboard.search_orders(
            OrderFilters(created_from=today - dt.timedelta(days=30),
                         created_to=today - dt.timedelta(days=30)), None
        ),
        "dashboard: merchant + last 7 days": lambda: dashboard.search_orders(
            OrderFilters(merchant_id=merchant_id, created_from=today - dt.timedelta(days=7)),
            None,
        ),
        "dashboard: search by customer email": lambda: dashboard.search_orders(
            OrderFilters(search="customer123@example.com"), None
        ),
        "dashboard: search by order id": lambda: dashboard.search_orders(
            OrderFilters(search="ord_bench000054321"), None
        ),
        "slo: unfinished orders past 5 s": lambda: slo.evaluate_slos(),
    }


def run(args) -> dict:
    from app.extensions import db
    from app.factory import create_app
    from app.infra.models import Merchant

    orders_count = getattr(args, "orders", 100_000)
    name = f"op_bench_{uuid.uuid4().hex[:8]}"
    admin = create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f'CREATE DATABASE "{name}"'))
    url = PG_ADMIN_URL.rsplit("/", 1)[0] + f"/{name}"
    results: dict = {"orders": orders_count, "queries": {}}
    try:
        with tempfile.TemporaryDirectory() as instance:
            app = create_app({
                "ENV": "testing", "DATABASE_URL": url, "REDIS_URL": REDIS_URL,
                "INSTANCE_PATH": str(Path(instance)), "QUEUE_PREFIX": f"{name}:",
                "LOG_LEVEL": "WARNING", "SECRET_KEY": "bench-" + "s" * 40,
                "JWT_SIGNING_KEY": "bench-" + "j" * 40, "WEBHOOK_MASTER_KEY": "bench-" + "w" * 40,
            })
            with app.app_context():
                from flask_migrate import upgrade

                upgrade()
                merchant_ids = [f"mer_bench{i:03d}" for i in range(MERCHANTS)]
                db.session.add_all(Merchant(id=m, name=m) for m in merchant_ids)
                db.session.commit()
                started = time.perf_counter()
                with db.engine.begin() as connection:
                    _seed(connection, merchant_ids, orders_count)
                results["seed_seconds"] = round(time.perf_counter() - started, 2)
                for label, call in _queries(app, merchant_ids[3]).items():
                    statements = _capture(db.engine, call)
                    db.session.rollback()
                    results["queries"][label] = [_explain(db.engine, s, p) for s, p in statements]
                    for entry in results["queries"][label]:
                        print(f"\n-- {label}: {entry['execution_ms']} ms, "
                              f"index={entry['uses_index']}\n{entry['plan']}", flush=True)
                db.session.remove()
                db.engine.dispose()
    finally:
        with admin.connect() as connection:
            connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()
    results["all_use_indexes"] = all(
        e["uses_index"] for entries in results["queries"].values() for e in entries
    )
    # The printed plans are the report; keep the JSON short.
    for entries in results["queries"].values():
        for entry in entries:
            entry.pop("plan")
    return results


def _explain(engine, statement: str, parameters) -> dict:
    with engine.connect() as connection:
        raw = connection.connection.driver_connection
        with raw.cursor() as cursor:
            cursor.execute("EXPLAIN (ANALYZE, BUFFERS) " + statement, parameters)
            plan = "\n".join(row[0] for row in cursor.fetchall())
        raw.rollback()
    executed = [line for line in plan.splitlines() if "Execution Time" in line]
    seq_scan_on_orders = "Seq Scan on orders" in plan
    return {
        "plan": plan,
        "uses_index": not seq_scan_on_orders and ("Index" in plan or "Bitmap" in plan),
        "execution_ms": float(executed[0].split(":")[1].split()[0]) if executed else None,
    }
