"""Backup and restore throughput on PostgreSQL: `flask backup` / `flask restore` of a database with
100,000 orders (the same seed as bench_order_queries), verification (counts, checksums and
check-integrity) included in the restore time.

    .venv/bin/python -m benchmarks --only bench_backup [--backup-orders 100000]
"""

from __future__ import annotations

import tempfile
import time
import uuid
from pathlib import Path

from sqlalchemy import create_engine, text

from benchmarks.bench_order_queries import MERCHANTS, PG_ADMIN_URL, REDIS_URL, _seed


def add_arguments(parser) -> None:
    parser.add_argument("--backup-orders", type=int, default=100_000,
                        help="orders in the database bench_backup backs up and restores")


def _app(url: str, instance: str, prefix: str):
    from app.factory import create_app

    return create_app({
        "ENV": "testing", "DATABASE_URL": url, "REDIS_URL": REDIS_URL, "INSTANCE_PATH": instance,
        "QUEUE_PREFIX": prefix, "LOG_LEVEL": "WARNING", "SECRET_KEY": "bench-" + "s" * 40,
        "JWT_SIGNING_KEY": "bench-" + "j" * 40, "WEBHOOK_MASTER_KEY": "bench-" + "w" * 40,
    })


def run(args) -> dict:
    from app.extensions import db
    from app.infra.models import Merchant
    from app.services import backups

    orders = getattr(args, "backup_orders", 100_000)
    run_id = uuid.uuid4().hex[:8]
    source, target = f"op_bench_bk_{run_id}", f"op_bench_rs_{run_id}"
    base = PG_ADMIN_URL.rsplit("/", 1)[0]
    admin = create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        for name in (source, target):
            connection.execute(text(f'CREATE DATABASE "{name}"'))
    results: dict = {"orders": orders}
    try:
        with tempfile.TemporaryDirectory() as work:
            app = _app(f"{base}/{source}", work, f"bk{run_id}_")
            with app.app_context():
                from flask_migrate import upgrade

                upgrade()
                merchant_ids = [f"mer_bench{i:03d}" for i in range(MERCHANTS)]
                db.session.add_all(Merchant(id=m, name=m) for m in merchant_ids)
                db.session.commit()
                with db.engine.begin() as connection:
                    _seed(connection, merchant_ids, orders)
                started = time.perf_counter()
                manifest = backups.take_backup(Path(work) / "backup")
                results["backup_seconds"] = round(time.perf_counter() - started, 2)
                db.engine.dispose()
            rows = sum(t["rows"] for t in manifest["tables"].values())
            results["rows"] = rows
            results["backup_bytes"] = manifest["data_bytes"]
            restored = _app(f"{base}/{target}", work, f"rs{run_id}_")
            with restored.app_context():
                started = time.perf_counter()
                report = backups.restore_backup(Path(work) / "backup")
                results["restore_and_verify_seconds"] = round(time.perf_counter() - started, 2)
                # The synthetic seed has orders without saga steps, which check-integrity rightly
                # reports; what the benchmark checks is that the copy matches the backup.
                results["counts_and_checksums_match"] = not [
                    m for m in report.mismatches if not m.startswith("check-integrity")]
                db.engine.dispose()
            results["backup_rows_per_second"] = round(rows / max(results["backup_seconds"], 1e-6))
            results["restore_rows_per_second"] = round(
                rows / max(results["restore_and_verify_seconds"], 1e-6))
    finally:
        with admin.connect() as connection:
            for name in (source, target):
                connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()
    return results
