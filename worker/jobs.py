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
from app.services.saga import SagaContext, drive_saga

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
    """Drive one order's saga until it is final (safe to run twice), then publish its events."""
    token = current_request_id.set(request_id)
    app = current_app._get_current_object()
    try:
        ctx = SagaContext(
            payments=app.extensions["payment_provider"],
            shipping=app.extensions["shipping_provider"],
            worker=worker_identity(),
            lease_seconds=app.config["SAGA_LEASE_SECONDS"],
            on_boundary=_pause_hook(app),
            on_step=observe_saga_step,
        )
        run = drive_saga(order_id, ctx)
        if is_final(run.status):
            slo.count_final_order(
                order_id, run.status, run.failure_reason, run.created_at, run.finished_at
            )
        log.info("saga run finished", extra={"order_id": order_id, "status": run.status})
        if not run.events_published:
            _publish(order_id)
        return run.status
    finally:
        current_request_id.reset(token)


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
