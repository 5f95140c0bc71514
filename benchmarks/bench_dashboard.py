"""Dashboard pages with 100,000 orders in PostgreSQL: each page must answer in under 300 ms.

`make bench BENCH_ARGS="--only bench_dashboard"` (or `--dashboard-orders 20000` for a quick run).

Seeds a fresh database (real migrations, so the real indexes) with orders spread over 30 days in
every status, each with its lines, saga steps, step attempts and events; then logs in as an admin
and times every page through the app (the Flask test client: routing, queries, templates, no
network). Figures: median and p95 per page over --dashboard-repeats requests.
"""

from __future__ import annotations

import datetime as dt
import random
import statistics
import tempfile
import time
import uuid
from pathlib import Path

ADMIN_PG_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
BUDGET_MS = 300
STATUS_MIX = (["completed"] * 80 + ["failed"] * 8 + ["cancelled"] * 4 + ["processing"] * 5
              + ["pending"] * 3)
FAILURES = ("payment_declined", "out_of_stock", "payment_unavailable", "shipping_unavailable")
STEPS = ("reserve_inventory", "capture_payment", "create_shipment", "complete")


def add_arguments(parser) -> None:
    parser.add_argument("--dashboard-orders", type=int, default=100_000)
    parser.add_argument("--dashboard-repeats", type=int, default=20)
    parser.add_argument("--dashboard-postgres", default=ADMIN_PG_URL)
    parser.add_argument("--dashboard-redis", default="redis://127.0.0.1:6379/14")
    parser.add_argument("--dashboard-database", help="time an already seeded database (kept)")


def _rows_for(i: int, merchant_id: str, product, now: dt.datetime, days: int, rng):
    status = rng.choice(STATUS_MIX)
    created = now - dt.timedelta(seconds=rng.uniform(0, days * 86400))
    finished = created + dt.timedelta(seconds=rng.uniform(0.2, 8.0)) if status in (
        "completed", "failed", "cancelled") else None
    order_id = f"ord_bench{i:09d}"
    order = {
        "id": order_id, "merchant_id": merchant_id, "status": status,
        "failure_reason": rng.choice(FAILURES) if status == "failed" else None,
        "currency": "MYR", "total_amount": 1999, "customer_email": f"c{i % 20000}@example.com",
        "customer_name": f"Customer {i}", "shipping_address": {"line1": "1 Jalan", "city": "KL",
                                                               "postal_code": "50450",
                                                               "country": "MY"},
        "payment_token": "tok_visa", "version": 1, "created_at": created,
        "updated_at": finished or created, "finished_at": finished,
    }
    line = {"order_id": order_id, "product_id": product.id, "sku": product.sku, "quantity": 1,
            "unit_price": 1999, "line_total": 1999}
    steps, attempts, events = [], [], []
    done = 4 if status == "completed" else 2 if status == "failed" else 1
    for position, name in enumerate(STEPS):
        succeeded = position < done - (1 if status == "failed" else 0)
        failed_here = status == "failed" and position == done - 1
        steps.append({"order_id": order_id, "name": name, "position": position,
                      "status": "succeeded" if succeeded else "failed" if failed_here
                      else "pending", "attempts": 1 if (succeeded or failed_here) else 0,
                      "compensation_attempts": 0, "idempotency_key": f"{order_id}:{name}"})
        if succeeded or failed_here:
            attempts.append({"order_id": order_id, "step": name, "kind": "action", "attempt": 1,
                             "outcome": "succeeded" if succeeded else "failed",
                             "error": None if succeeded else "card declined",
                             "started_at": created + dt.timedelta(milliseconds=50 * position),
                             "duration_ms": rng.uniform(5, 400), "worker": "bench"})
            events.append({"id": f"evt_b{i:09d}{position}", "order_id": order_id,
                           "merchant_id": merchant_id, "type": f"{name}.done",
                           "at": created + dt.timedelta(milliseconds=50 * position + 40),
                           "detail": {}, "published_at": created})
    return order, line, steps, attempts, events


def seed_orders(n: int, days: int = 30, seed: int = 7, batch: int = 5000) -> None:
    """Insert n orders (with lines, steps, attempts, events) for the demo merchants, in bulk."""
    from sqlalchemy import insert, select

    from app.extensions import db
    from app.infra.models import (
        Merchant,
        Order,
        OrderEvent,
        OrderLine,
        Product,
        SagaStep,
        SagaStepAttempt,
    )

    rng = random.Random(seed)
    now = dt.datetime.now(dt.UTC)
    merchants = list(db.session.scalars(select(Merchant)))
    products = {p.merchant_id: p for p in db.session.scalars(select(Product))}
    start = db.session.scalar(select(Order.seq).order_by(Order.seq.desc()).limit(1)) or 0
    for offset in range(0, n, batch):
        chunk = [_rows_for(start + i, m.id, products[m.id], now, days, rng)
                 for i in range(offset, min(n, offset + batch))
                 for m in [merchants[i % len(merchants)]]]
        for model, index in ((Order, 0), (OrderLine, 1)):
            db.session.execute(insert(model), [c[index] for c in chunk])
        for model, index in ((SagaStep, 2), (SagaStepAttempt, 3), (OrderEvent, 4)):
            rows = [r for c in chunk for r in c[index]]
            if rows:
                db.session.execute(insert(model), rows)
        db.session.commit()


def _time(client, path: str, repeats: int) -> dict:
    timings = []
    for _ in range(repeats):
        started = time.perf_counter()
        response = client.get(path)
        timings.append((time.perf_counter() - started) * 1000)
        assert response.status_code == 200, (path, response.status_code)
    timings.sort()
    return {"median_ms": round(statistics.median(timings), 1),
            "p95_ms": round(timings[max(0, int(len(timings) * 0.95) - 1)], 1),
            "max_ms": round(timings[-1], 1)}


def _app(url: str, args, prefix: str):
    from app.factory import create_app

    return create_app({
        "ENV": "testing", "DATABASE_URL": url, "REDIS_URL": args.dashboard_redis,
        "INSTANCE_PATH": tempfile.mkdtemp(prefix="bench-dashboard-"), "LOG_LEVEL": "WARNING",
        "QUEUE_PREFIX": prefix, "SECRET_KEY": "bench-" + "s" * 40,
        "JWT_SIGNING_KEY": "bench-" + "j" * 40, "WEBHOOK_MASTER_KEY": "bench-" + "w" * 40,
    })


def _seed(app, n: int) -> float:
    from flask_migrate import upgrade
    from sqlalchemy import text

    from app.cli.seed import seed_demo
    from app.extensions import db

    with app.app_context():
        upgrade(directory=str(Path(__file__).resolve().parent.parent / "migrations"))
        seed_demo()
        started = time.perf_counter()
        seed_orders(n)
        seeded_s = time.perf_counter() - started
        db.session.execute(text("ANALYZE"))
        db.session.commit()
    return seeded_s


def _measure(app, repeats: int) -> dict:
    from sqlalchemy import func, select

    from app.extensions import db
    from app.infra.models import Order
    from app.services import slo

    with app.app_context():
        # What the scheduler does every 10 s: pages read the stored SLO status.
        slo.evaluate_and_store(min_interval=0)
        total = db.session.scalar(select(func.count()).select_from(Order))
        failed_id = db.session.scalar(
            select(Order.id).where(Order.status == "failed").order_by(Order.seq.desc()).limit(1))
    client = app.test_client()
    login = client.get("/login").get_data(as_text=True)
    token = login.split('name="csrf_token" type="hidden" value="')[1].split('"')[0]
    client.post("/login", data={"username": "admin", "password": app.config["DEMO_PASSWORD"],
                                "csrf_token": token})
    pages = {
        "shift view /": "/",
        "orders": "/orders",
        "orders?status=failed": "/orders?status=failed",
        "orders?failure_reason": "/orders?failure_reason=payment_declined",
        "orders?created_from": "/orders?created_from=2020-01-01",
        "orders?q=email": "/orders?q=c123%40example.com",
        "order page": f"/orders/{failed_id}",
        "queues": "/queues",
        "flags": "/flags",
        "audit": "/audit",
        "admin/users": "/admin/users",
    }
    _time(client, "/", 2)  # warm-up: template compilation, connection pool
    results = {label: _time(client, path, repeats) for label, path in pages.items()}
    slowest = max(r["p95_ms"] for r in results.values())
    return {"orders": total, "pages": results, "slowest_p95_ms": slowest,
            "budget_ms": BUDGET_MS, "within_budget": slowest < BUDGET_MS}


def run(args) -> dict:
    from sqlalchemy import create_engine, text

    from app.extensions import db

    if args.dashboard_database:
        app = _app(args.dashboard_database, args, "bench-dashboard:")
        try:
            return _measure(app, args.dashboard_repeats)
        finally:
            with app.app_context():
                db.engine.dispose()
    name = f"bench_dashboard_{uuid.uuid4().hex[:8]}"
    admin_engine = create_engine(args.dashboard_postgres, isolation_level="AUTOCOMMIT")
    with admin_engine.connect() as connection:
        connection.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        app = _app(args.dashboard_postgres.rsplit("/", 1)[0] + f"/{name}", args, f"{name}:")
        seeded_s = _seed(app, args.dashboard_orders)
        report = _measure(app, args.dashboard_repeats)
        with app.app_context():
            db.engine.dispose()
        return {"seed_seconds": round(seeded_s, 1), **report}
    finally:
        with admin_engine.connect() as connection:
            connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin_engine.dispose()
