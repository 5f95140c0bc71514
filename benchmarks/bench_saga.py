"""Saga throughput and latency on PostgreSQL with real RQ workers.

1. Baseline: N no-op RQ jobs drained by W workers (raw RQ overhead: Redis round trips, job
   bookkeeping) -> jobs/s.
2. Throughput: a backlog of N placed orders, one saga job each, enqueued in one enqueue_many batch
   (the product's RqJobQueue.enqueue_sagas) and drained by the same W workers (`python -m worker`,
   the production command, which takes up to SAGA_BATCH_SIZE waiting sagas per job) -> completed
   sagas/s. The goal is at least half the no-op rate.
3. Latency: orders placed at half the measured saga rate for a while; p50/p95/max from acceptance
   (created_at) to the final state (finished_at).

    .venv/bin/python -m benchmarks --only bench_saga [--saga-orders 1000] [--saga-workers 2]
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

from sqlalchemy import create_engine, func, select, text

from benchmarks.cpu import CpuMeter, pids_named

ROOT = Path(__file__).resolve().parent.parent
PG_ADMIN_URL = os.environ.get(
    "BENCH_POSTGRES_URL",
    os.environ.get("TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"),
)
REDIS_URL = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/12")
SECRETS = {
    "SECRET_KEY": "bench-secret-key-" + "s" * 40,
    "JWT_SIGNING_KEY": "bench-jwt-signing-key-" + "j" * 40,
    "WEBHOOK_MASTER_KEY": "bench-webhook-master-key-" + "w" * 40,
}
ORDER = {
    "items": [{"sku": "BENCH-1", "quantity": 1}],
    "customer": {"email": "bench@example.com", "name": "Bench"},
    "shipping_address": {
        "line1": "1 Jalan Ampang",
        "city": "Kuala Lumpur",
        "postal_code": "50450",
        "country": "MY",
    },
    "payment": {"token": "tok_visa"},
}


WARM_UP = 200  # no-op jobs and sagas run before the measured rounds


def add_arguments(parser) -> None:
    parser.add_argument("--saga-orders", type=int, default=1000, help="backlog size")
    parser.add_argument(
        "--saga-rounds", type=int, default=3, help="alternating no-op / saga rounds (median)"
    )
    parser.add_argument("--saga-workers", type=int, default=2)
    parser.add_argument("--saga-latency-seconds", type=float, default=15.0)


class _NoQueue:
    """Places the backlog without queueing it: the bench enqueues it later in one batch."""

    def enqueue_saga(self, order_id, *, request_id=None):
        pass


def _settings(database_url: str, instance: Path) -> dict:
    return {
        "ENV": "testing",
        "DATABASE_URL": database_url,
        "REDIS_URL": REDIS_URL,
        "INSTANCE_PATH": str(instance),
        "LOG_LEVEL": "WARNING",
        "QUEUE_PREFIX": "bench:",
        **SECRETS,
    }


def _start_workers(settings: dict, count: int, log_dir: Path) -> list[subprocess.Popen]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("ORDERPROCESSING_")}
    env.update({f"ORDERPROCESSING_{k}": str(v) for k, v in settings.items()})
    env["PYTHONPATH"] = str(ROOT)
    workers = []
    for i in range(count):
        log = open(log_dir / f"worker-{i}.log", "ab")  # noqa: SIM115 - closed with the process
        workers.append(
            subprocess.Popen(
                [sys.executable, "-m", "worker", "--name", f"bench-{i}-{uuid.uuid4().hex[:6]}"],
                cwd=ROOT,
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        )
    return workers


def _wait(predicate, timeout: float, poll: float = 0.02) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise TimeoutError("benchmark phase did not finish in time")
        time.sleep(poll)


def _wait_drained(saga_queue, all_final, timeout: float = 1200) -> None:
    """Until the backlog is done: polled cheaply on Redis (no saga job waiting or running), then
    confirmed in the database (polling the database itself would compete with the workers)."""
    from rq.registry import StartedJobRegistry

    running = StartedJobRegistry(queue=saga_queue)
    deadline = time.monotonic() + timeout
    while not (saga_queue.count == 0 and running.count == 0 and all_final()):
        if time.monotonic() > deadline:
            raise TimeoutError("benchmark phase did not finish in time")
        time.sleep(0.01)


def _final_count(db, order_ids: list[str]) -> int:
    from app.infra.models import Order

    count = db.session.scalar(
        select(func.count())
        .select_from(Order)
        .where(Order.id.in_(order_ids), Order.status.in_(["completed", "failed", "cancelled"]))
    )
    db.session.rollback()
    return count


def _place(n: int, merchant_id: str, queue) -> list[str]:
    from app.services.orders import place_order

    return [place_order(merchant_id, ORDER, queue).id for _ in range(n)]


def run(args) -> dict:
    from flask_migrate import upgrade
    from rq import Queue, Worker

    from app.extensions import db
    from app.factory import create_app
    from app.infra.models import Merchant, Order, Product
    from app.infra.queue import DEFAULT_QUEUE, NOOP, SAGA_QUEUE

    n, worker_count = args.saga_orders, args.saga_workers
    name = f"bench_saga_{uuid.uuid4().hex[:8]}"
    admin = create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f'CREATE DATABASE "{name}"'))
    database_url = PG_ADMIN_URL.rsplit("/", 1)[0] + f"/{name}"
    tmp = Path(tempfile.mkdtemp(prefix="bench-saga-"))
    settings = _settings(database_url, tmp / "instance")
    app = create_app(settings)
    redis = app.extensions["redis"]
    redis.flushdb()
    workers: list[subprocess.Popen] = []
    try:
        with app.app_context():
            upgrade()
            merchant = Merchant(id="mer_bench", name="Bench")
            db.session.add(merchant)
            db.session.add(
                Product(
                    id="prd_bench",
                    merchant_id=merchant.id,
                    sku="BENCH-1",
                    name="Bench",
                    price=1000,
                    currency="MYR",
                    stock=10**9,
                )
            )
            db.session.commit()
            warm_up = _place(WARM_UP, "mer_bench", _NoQueue())
            backlogs = [_place(n, "mer_bench", _NoQueue()) for _ in range(args.saga_rounds)]

        workers = _start_workers(settings, worker_count, tmp)
        _wait(lambda: len(Worker.all(connection=redis)) == worker_count, 60, poll=0.2)

        worker_pids = [w.pid for w in workers]
        cpu_groups = {
            "workers": lambda: worker_pids,
            "postgres": lambda: pids_named("postgres"),
            "redis": lambda: pids_named("redis-server"),
        }

        # Alternating rounds of 1. no-op jobs and 2. a saga backlog, through the same workers:
        # this machine's speed drifts from one moment to the next (a shared VM), so each round's
        # ratio compares phases measured seconds apart, and the report takes their median.
        noop_queue = Queue("bench:" + DEFAULT_QUEUE, connection=redis)
        saga_queue = Queue("bench:" + SAGA_QUEUE, connection=redis)
        # Unmeasured: the workers' first jobs and sagas (imports, statement caches, connections).
        noop_queue.enqueue_many([Queue.prepare_data(NOOP, result_ttl=600) for _ in range(WARM_UP)])
        app.extensions["job_queue"].enqueue_sagas(warm_up)
        with app.app_context():
            _wait_drained(saga_queue, lambda: _final_count(db, warm_up) >= WARM_UP)
        _wait(lambda: noop_queue.finished_job_registry.count >= WARM_UP, 600)
        warm_up_jobs = saga_queue.finished_job_registry.count
        noop_meter, saga_meter = CpuMeter(cpu_groups), CpuMeter(cpu_groups)
        noop_meter.pause(), saga_meter.pause()
        rounds = []
        for index in range(args.saga_rounds):
            noop_meter.resume()
            started = time.perf_counter()
            done = noop_queue.finished_job_registry.count + n
            noop_queue.enqueue_many(
                [Queue.prepare_data(NOOP, result_ttl=600) for _ in range(n)]
            )
            _wait(lambda: noop_queue.finished_job_registry.count >= done, 600)  # noqa: B023
            noop_rate = n / (time.perf_counter() - started)
            noop_meter.pause()

            backlog = backlogs[index]
            saga_meter.resume()
            started = time.perf_counter()
            # The product's own batch enqueue (the scheduler's recovery uses it): a job per saga.
            app.extensions["job_queue"].enqueue_sagas(backlog)
            with app.app_context():
                _wait_drained(saga_queue, lambda: _final_count(db, backlog) >= n)  # noqa: B023
            saga_rate = n / (time.perf_counter() - started)
            saga_meter.pause()
            rounds.append((noop_rate, saga_rate))
        noop_cpu = noop_meter.per_unit(n * args.saga_rounds)
        saga_cpu = saga_meter.per_unit(n * args.saga_rounds)
        saga_jobs_run = saga_queue.finished_job_registry.count - warm_up_jobs
        ratios = sorted(saga / noop for noop, saga in rounds)
        ratio = statistics.median(ratios)
        saga_rate = statistics.median(saga for _, saga in rounds)
        noop_rate = statistics.median(noop for noop, _ in rounds)

        # 3. latency at half the measured saga throughput
        rate = saga_rate / 2
        placed: list[str] = []
        with app.app_context():
            queue = app.extensions["job_queue"]
            began = time.perf_counter()
            while time.perf_counter() - began < args.saga_latency_seconds:
                placed += _place(1, "mer_bench", queue)
                time.sleep(max(0.0, began + len(placed) / rate - time.perf_counter()))
            _wait(lambda: _final_count(db, placed) >= len(placed), 300, poll=0.1)
            rows = db.session.execute(
                select(Order.created_at, Order.finished_at, Order.status).where(
                    Order.id.in_(placed)
                )
            ).all()
            db.session.rollback()
        latencies = sorted((f - c).total_seconds() * 1000 for c, f, _ in rows)
        completed = sum(1 for *_, status in rows if status == "completed")
        return {
            "database": "postgresql",
            "workers": worker_count,
            "backlog": n,
            "rounds": [
                {"noop_jobs_per_second": round(noop, 1), "sagas_per_second": round(saga, 1)}
                for noop, saga in rounds
            ],
            "noop_jobs_per_second": round(noop_rate, 1),  # medians of the rounds
            "sagas_per_second": round(saga_rate, 1),
            "saga_to_noop_ratio": round(ratio, 3),  # the median round's
            "saga_to_noop_ratios": [round(r, 3) for r in ratios],
            # The backlogs' jobs that ran; the others were taken by them (SAGA_BATCH_SIZE).
            "saga_jobs_run": saga_jobs_run,
            "goal_at_least_half": ratio >= 0.5,
            # CPU per job (ms) of the workers, PostgreSQL and Redis: where a saga's time goes.
            **({"noop_cpu_ms_per_job": noop_cpu, "saga_cpu_ms_per_job": saga_cpu}
               if CpuMeter.available() else {}),
            "latency_load_orders_per_second": round(rate, 1),
            "latency_orders": len(rows),
            "latency_completed": completed,
            "latency_ms_p50": round(statistics.median(latencies), 1),
            "latency_ms_p95": round(latencies[int(0.95 * (len(latencies) - 1))], 1),
            "latency_ms_max": round(latencies[-1], 1),
        }
    finally:
        for worker in workers:
            worker.terminate()
        for worker in workers:
            try:
                worker.wait(timeout=20)
            except subprocess.TimeoutExpired:
                worker.kill()
        redis.flushdb()
        with app.app_context():
            db.engine.dispose()
        with admin.connect() as connection:
            connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()
