"""RQ jobs: thin, take ids only, idempotent; the services do the work."""

from __future__ import annotations

import logging
import time
import uuid

from flask import current_app

from app.domain.orders import is_final
from app.extensions import db
from app.factory import worker_identity
from app.observability.logs import current_request_id
from app.observability.metrics import observe_saga_step
from app.services import outbox, slo, webhooks
from app.services.saga import SagaContext, SagaRun, drive_saga
from app.services.saga_batch import drive_sagas

log = logging.getLogger(__name__)
PAUSED_KEY = "saga:paused"


def _pause_hook(app):
    """Testing only: stop this worker for good at SAGA_PAUSE_AT, so a test can SIGKILL it there."""
    point = app.config.get("SAGA_PAUSE_AT")
    if not point or app.config["ENV"] != "testing":
        return None
    redis = app.extensions["redis"]

    def pause(order_id: str, reached: str) -> None:
        if reached == point:
            redis.set(app.config["QUEUE_PREFIX"] + PAUSED_KEY, f"{order_id} {reached}")
            while True:  # until the test kills the process
                time.sleep(1)

    return pause


def run_order_saga(order_id: str, request_id: str | None = None) -> str:
    """Drive one order's saga until it is final (safe to run twice), then publish its events.

    When more saga jobs wait behind it (a backlog), the job takes up to SAGA_BATCH_SIZE - 1 of
    them off the queue and drives all those sagas together (services/saga_batch.py): a backlog
    drains several times faster. Should the batch fail, the taken sagas are queued again.
    """
    token = current_request_id.set(request_id)
    app = current_app._get_current_object()
    queue = app.extensions["job_queue"]
    try:
        ctx = SagaContext(
            payments=app.extensions["payment_provider"],
            shipping=app.extensions["shipping_provider"],
            worker=worker_identity(),
            lease_seconds=app.config["SAGA_LEASE_SECONDS"],
            circuit_wait_seconds=app.config["CIRCUIT_BREAKER_MAX_WAIT_SECONDS"],
            on_boundary=_pause_hook(app),
            on_step=observe_saga_step,
        )
        size = app.config["SAGA_BATCH_SIZE"]
        taken = queue.adopt_waiting_sagas(size - 1) if size > 1 else []
        if not taken:
            runs = {order_id: drive_saga(order_id, ctx)}
        else:
            try:
                runs = drive_sagas([order_id, *taken], ctx)
            except Exception:
                _requeue(queue, taken)
                raise
        _settle(runs, leader=order_id)
        return runs[order_id].status
    finally:
        current_request_id.reset(token)


def _settle(runs: dict[str, SagaRun], leader: str) -> None:
    """Count the final orders for the SLOs and hand their events on (`leader`: the job's own
    order, the one its request id belongs to)."""
    slo.count_final_orders(
        [
            (order_id, run.status, run.failure_reason, run.created_at, run.finished_at)
            for order_id, run in runs.items()
            if is_final(run.status)
        ]
    )
    job_request_id = current_request_id.get()
    try:
        for order_id, run in runs.items():
            # Each order's lines carry the id of the request that placed it (not the job's).
            current_request_id.set(
                run.request_id or (job_request_id if order_id == leader else None)
            )
            log.info("saga run finished", extra={"order_id": order_id, "status": run.status})
            if not run.events_published:
                _publish(order_id)
    finally:
        current_request_id.set(job_request_id)


def _requeue(queue, order_ids: list[str]) -> None:
    """Best effort: if Redis is gone too, the scheduler's recovery re-drives them from the
    database once their leases lapse."""
    try:
        queue.enqueue_sagas(order_ids)
    except Exception:  # noqa: BLE001 - the original error is the one worth raising
        log.warning("could not re-queue a failed batch's sagas", exc_info=True)


def _publish(order_id: str) -> None:
    """Relay the order's committed events to webhooks; the scheduler's tick publishes whatever
    fails here, so a hiccup never turns a finished saga into a failed job."""
    try:
        targets = outbox.publish_pending_events(order_id)
        if targets:
            current_app.extensions["job_queue"].enqueue_webhook_deliveries(targets)
    except Exception:  # noqa: BLE001 - the events stay unpublished and are retried
        db.session.rollback()
        log.warning("outbox publish failed; the scheduler will retry", exc_info=True)


def deliver_webhooks(webhook_id: str, order_id: str) -> int:
    """Send the due deliveries of one (webhook, order) in order; one sender at a time."""
    app = current_app._get_current_object()
    redis = app.extensions["redis"]
    lock = f"{app.config['QUEUE_PREFIX']}lock:webhook:{webhook_id}:{order_id}"
    token = uuid.uuid4().hex
    settings = webhooks.delivery_settings(app.config)
    # Long enough for one attempt; the scheduler re-queues anything left behind.
    if not redis.set(lock, token, nx=True, px=int((settings.timeout_seconds + 30) * 1000)):
        return 0
    try:
        return webhooks.deliver_pending(webhook_id, order_id, settings)
    finally:
        if redis.get(lock) == token.encode():
            redis.delete(lock)


def noop() -> None:
    """Does nothing: the benchmark's baseline for raw RQ throughput."""
