"""Prometheus metrics, correct across processes (prometheus-client multiprocess mode).

Every gunicorn worker and every RQ worker writes its counters and histograms to files under
PROMETHEUS_MULTIPROC_DIR; /metrics, whichever gunicorn worker answers it, merges all of them. Values
that live in Redis or the database (queue depth, workers, circuit breakers, stuck sagas) are read at
scrape time instead, and a scrape never fails because Redis or the database is down: those gauges
are just left out and `redis_up` / `database_up` say why.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import time
from functools import lru_cache

from flask import Blueprint, Flask, Response, current_app, g, request
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Histogram,
    generate_latest,
)
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.multiprocess import MultiProcessCollector

from app.domain.slo import API_AVAILABILITY, API_LATENCY, API_LATENCY_SECONDS
from app.observability.multiprocess import ENV as MULTIPROC_ENV

# prometheus-client writes each process's values under $PROMETHEUS_MULTIPROC_DIR from the first
# metric on (below); a directory named there but not made yet (a fresh host, a tmpfs after a
# reboot) would stop every command with a FileNotFoundError. Made here, before any metric.
if os.environ.get(MULTIPROC_ENV):
    os.makedirs(os.environ[MULTIPROC_ENV], exist_ok=True)
from app.observability.slo_buckets import SloBuckets

log = logging.getLogger(__name__)
access_log = logging.getLogger("app.access")

# 0.3 s and 5 s are bucket bounds because the SLOs are judged against them.
HTTP_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.2, 0.3, 0.5, 1.0, 2.5, 5.0, 10.0)
ORDER_BUCKETS = (0.1, 0.25, 0.5, 1.0, 2.0, 3.0, 5.0, 10.0, 30.0, 60.0, 300.0)
STEP_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)

HTTP_REQUESTS = Counter(
    "http_requests_total",
    "HTTP requests answered, by Flask url rule and status",
    ["endpoint", "status"],
)
HTTP_DURATION = Histogram(
    "http_request_duration_seconds",
    "Time to answer an HTTP request, by Flask url rule and status",
    ["endpoint", "status"],
    buckets=HTTP_BUCKETS,
)
ORDERS_CREATED = Counter("orders_created_total", "Orders accepted (stored pending)")
ORDERS_COMPLETED = Counter("orders_completed_total", "Orders that reached completed")
ORDERS_FAILED = Counter("orders_failed_total", "Orders that reached failed, by reason", ["reason"])
ORDERS_CANCELLED = Counter("orders_cancelled_total", "Orders that reached cancelled")
ORDER_PROCESSING = Histogram(
    "order_processing_duration_seconds",
    "From an order's acceptance to its final state (completed, failed or cancelled)",
    buckets=ORDER_BUCKETS,
)
SAGA_STEP_DURATION = Histogram(
    "saga_step_duration_seconds",
    "One attempt of a saga step or compensation, by step and outcome",
    ["step", "outcome"],
    buckets=STEP_BUCKETS,
)
SAGA_STEP_RETRIES = Counter(
    "saga_step_retries_total",
    "Saga step attempts that failed transiently and are retried",
    ["step"],
)
WEBHOOK_DELIVERIES = Counter(
    "webhook_deliveries_total", "Webhook delivery attempts, by outcome", ["outcome"]
)

BREAKER_STATE_VALUES = {"closed": 0, "half_open": 1, "open": 2}
# The scheduler's last check-integrity run, kept in Redis (the scheduler is not scraped).
INTEGRITY_CHECK_KEY = "scheduler:integrity-check"
UNMATCHED_ENDPOINT = "<unmatched>"

metrics_blueprint = Blueprint("metrics", __name__)


def multiprocess_mode() -> bool:
    return bool(os.environ.get("PROMETHEUS_MULTIPROC_DIR"))


# --- recording (called from request hooks, the saga's on_step, the worker's job) ---


def observe_saga_step(step: str, kind: str, outcome: str, seconds: float) -> None:
    """SagaContext.on_step: one attempt of a step (or compensation) and how it ended."""
    SAGA_STEP_DURATION.labels(step=step, outcome=outcome).observe(seconds)
    if outcome == "retryable_error":
        SAGA_STEP_RETRIES.labels(step=step).inc()


def record_webhook_delivery(outcome: str) -> None:
    """One webhook delivery attempt, by outcome: delivered | retry | failed."""
    WEBHOOK_DELIVERIES.labels(outcome=outcome).inc()


def record_orders_created(count: int = 1) -> None:
    ORDERS_CREATED.inc(count)


def record_order_final(status: str, reason: str | None, seconds: float | None) -> None:
    """An order just reached a final state, `seconds` after it was accepted."""
    if status == "completed":
        ORDERS_COMPLETED.inc()
    elif status == "failed":
        ORDERS_FAILED.labels(reason=reason or "unknown").inc()
    elif status == "cancelled":
        ORDERS_CANCELLED.inc()
    if seconds is not None:
        ORDER_PROCESSING.observe(max(seconds, 0.0))


def record_integrity_check(
    redis_client, prefix: str, discrepancies: int, seconds: float, keep_seconds: int
) -> None:
    """The scheduler's reconciliation: how many disagreements, when, how long it took; /metrics
    exports it for `keep_seconds` (gone afterwards, so a stopped check cannot alert forever)."""
    key = prefix + INTEGRITY_CHECK_KEY
    pipe = redis_client.pipeline()
    pipe.hset(
        key,
        mapping={
            "discrepancies": discrepancies,
            "finished_at": round(time.time(), 3),
            "seconds": round(seconds, 3),
        },
    )
    pipe.expire(key, keep_seconds)
    pipe.execute()


# --- the Flask side ---


@lru_cache(maxsize=1024)
def _request_series(endpoint: str, status: int):
    """The (requests, duration) series of one route and status, looked up once per process: the
    label lookup cost more than the update (endpoints are route rules, so the set is bounded)."""
    labels = {"endpoint": endpoint, "status": str(status)}
    return HTTP_REQUESTS.labels(**labels), HTTP_DURATION.labels(**labels)


def init_metrics(app: Flask) -> None:
    """Time and count every request, feed the API SLO buckets, serve /metrics."""
    app.extensions["slo_buckets"] = SloBuckets(
        app.extensions["redis"], prefix=app.config["QUEUE_PREFIX"]
    )
    _count_created_orders_on_commit()

    @app.before_request
    def start_timer():
        g.metrics_started = time.perf_counter()

    @app.after_request
    def observe_request(response):
        started = g.pop("metrics_started", None)
        if started is None or request.endpoint == "metrics.metrics":
            return response
        seconds = time.perf_counter() - started
        endpoint = request.url_rule.rule if request.url_rule is not None else UNMATCHED_ENDPOINT
        count, duration = _request_series(endpoint, response.status_code)
        count.inc()
        duration.observe(seconds)
        if access_log.isEnabledFor(logging.INFO):
            access_log.info(
                "request",
                extra={
                    "method": request.method,
                    "path": request.path,
                    "endpoint": endpoint,
                    "status": response.status_code,
                    "duration_ms": round(seconds * 1000, 3),
                },
            )
        if request.path.startswith("/api/v1/") or request.path == "/api/v1":
            app.extensions["slo_buckets"].record_soon(
                [
                    (API_AVAILABILITY.slug, response.status_code >= 500),
                    (API_LATENCY.slug, seconds > API_LATENCY_SECONDS),
                ]
            )
        return response

    if app.config["METRICS_ENABLED"]:  # off: /metrics is a 404
        app.register_blueprint(metrics_blueprint)


def _count_created_orders_on_commit() -> None:
    """orders_created_total counts orders when their INSERT commits, whatever path created them."""
    from sqlalchemy import event
    from sqlalchemy.orm import Session

    from app.infra.models import Order

    if getattr(_count_created_orders_on_commit, "_installed", False):
        return
    _count_created_orders_on_commit._installed = True

    @event.listens_for(Session, "after_flush")
    def _collect(session, _flush_context):
        created = sum(1 for obj in session.new if isinstance(obj, Order))
        if created:
            session.info["orders_created"] = session.info.get("orders_created", 0) + created

    @event.listens_for(Session, "after_commit")
    def _count(session):
        created = session.info.pop("orders_created", 0)
        if created:
            record_orders_created(created)

    @event.listens_for(Session, "after_rollback")
    def _forget(session):
        session.info.pop("orders_created", None)


@metrics_blueprint.get("/metrics")
def metrics():
    """Prometheus text format: every process's counters plus what Redis and the DB say now."""
    scrape = CollectorRegistry()
    scrape.register(LiveStateCollector(current_app._get_current_object()))
    if multiprocess_mode():
        MultiProcessCollector(scrape)
        body = generate_latest(scrape)
    else:
        body = generate_latest(REGISTRY) + generate_latest(scrape)
    return Response(body, content_type=CONTENT_TYPE_LATEST)


class LiveStateCollector:
    """Gauges read at scrape time from Redis and the database; never raises."""

    def __init__(self, app: Flask):
        self.app = app

    def collect(self):
        yield from self._redis_state()
        yield from self._database_state()

    def _redis_state(self):
        from rq import Queue

        from app.infra.queue import ALL_QUEUES
        from app.infra.queue_admin import QueueAdmin

        connection = self.app.extensions["redis"]
        prefix = self.app.config["QUEUE_PREFIX"]
        up = GaugeMetricFamily("redis_up", "1 when Redis answered this scrape")
        try:
            depth = GaugeMetricFamily("rq_queue_depth", "Jobs waiting per queue", labels=["queue"])
            for name in ALL_QUEUES:
                depth.add_metric([name], Queue(prefix + name, connection=connection).count)
            workers = GaugeMetricFamily(
                "rq_workers", "RQ workers registered and heartbeating (lost ones not counted)"
            )
            # The dashboard's notion of alive: a worker silent past its heartbeat is lost at once,
            # not 90 s later when RQ drops its registration (the rq_workers == 0 alert).
            registered = QueueAdmin(connection, prefix, ALL_QUEUES).workers()
            workers.add_metric([], sum(1 for w in registered if not w.lost))
            breakers = self._breaker_states(connection)
            integrity = connection.hgetall(prefix + INTEGRITY_CHECK_KEY)
        except Exception as exc:  # noqa: BLE001 - a scrape must answer even with Redis down
            log.warning("metrics: Redis unavailable", extra={"error": type(exc).__name__})
            up.add_metric([], 0)
            yield up
            return
        up.add_metric([], 1)
        yield up
        yield depth
        yield workers
        if breakers is not None:
            yield breakers
        yield from self._integrity_check(integrity)

    @staticmethod
    def _integrity_check(fields: dict):
        """The scheduler's last check-integrity run (nothing until one ran recently)."""
        values = {k.decode() if isinstance(k, bytes) else k: v for k, v in fields.items()}
        gauges = (
            ("integrity_discrepancies", "discrepancies",
             "Disagreements between stock, orders, payments and refunds found by the scheduler's "
             "last check-integrity run"),
            ("integrity_check_last_run_timestamp_seconds", "finished_at",
             "When the scheduler's last check-integrity run finished (Unix time)"),
            ("integrity_check_duration_seconds", "seconds",
             "How long the scheduler's last check-integrity run took"),
        )
        for name, field, description in gauges:
            if field in values:
                family = GaugeMetricFamily(name, description)
                family.add_metric([], float(values[field]))
                yield family

    def _breaker_states(self, connection):
        try:
            from app.infra.circuit_breaker import circuit_states
        except ImportError:  # pragma: no cover - the breaker module ships with the saga
            return None
        family = GaugeMetricFamily(
            "circuit_breaker_state",
            "Provider circuit breaker: 0 closed, 1 half-open, 2 open",
            labels=["provider"],
        )
        for snapshot in circuit_states(connection, self.app.config):
            family.add_metric(
                [str(snapshot["provider"])], BREAKER_STATE_VALUES.get(str(snapshot["state"]), 2)
            )
        return family

    def _database_state(self):
        from sqlalchemy import func, select

        from app.domain.orders import FINAL_STATUSES, OrderStatus
        from app.extensions import db
        from app.infra.models import Order
        from app.infra.models.base import utcnow

        up = GaugeMetricFamily("database_up", "1 when the database answered this scrape")
        stuck = GaugeMetricFamily(
            "saga_stuck_orders",
            "Orders not final and without progress for SAGA_STUCK_AFTER_SECONDS",
        )
        cutoff = utcnow() - dt.timedelta(seconds=self.app.config["SAGA_STUCK_AFTER_SECONDS"])
        try:
            with db.engine.connect() as connection:
                count = connection.execute(
                    select(func.count())
                    .select_from(Order)
                    .where(
                        Order.status.in_(sorted(set(OrderStatus) - FINAL_STATUSES)),
                        Order.updated_at < cutoff,
                    )
                ).scalar_one()
        except Exception as exc:  # noqa: BLE001
            log.warning("metrics: database unavailable", extra={"error": type(exc).__name__})
            up.add_metric([], 0)
            yield up
            return
        up.add_metric([], 1)
        stuck.add_metric([], count)
        yield up
        yield stuck
