"""RQ jobs: thin, take ids only, idempotent; the services do the work."""

from __future__ import annotations

import logging

from flask import current_app

from app.factory import worker_identity
from app.observability.logs import current_request_id
from app.services.saga import SagaContext, run_saga

log = logging.getLogger(__name__)


def run_order_saga(order_id: str, request_id: str | None = None) -> str:
    """Drive one order's saga until it is final (safe to run twice)."""
    token = current_request_id.set(request_id)
    try:
        ctx = SagaContext(
            payments=current_app.extensions["payment_provider"],
            shipping=current_app.extensions["shipping_provider"],
            worker=worker_identity(),
        )
        status = run_saga(order_id, ctx)
        log.info("saga run finished", extra={"order_id": order_id, "status": status})
        return status
    finally:
        current_request_id.reset(token)


def noop() -> None:
    """Does nothing: the benchmark's baseline for raw RQ throughput."""
