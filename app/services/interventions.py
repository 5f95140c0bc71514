"""Operator actions on orders and queues from the dashboard; each is audited with its reason.

"Retry" re-drives a saga that is not final (stuck: a lost job, a killed worker, a held payment),
and re-opens a failed order whose failure came before any money moved (out of stock, payment
declined or in error, fraud suspected): the order goes back to pending with a fresh set of saga
steps - new provider idempotency keys, so the provider treats the new attempts as new - and the
saga runs again from the first step. An order that was charged and refunded (shipment_failed) is
never re-opened: a second run would charge the customer again. Completed and cancelled orders
have nothing to retry.
"""

from __future__ import annotations

from sqlalchemy import func, select, update

from app.domain.errors import Conflict, FieldError, NotFound, ValidationFailed
from app.domain.orders import OrderStatus, is_final, reopen_refusal
from app.domain.ports import JobQueue
from app.domain.saga import CAPTURE_PAYMENT, StepStatus
from app.extensions import db
from app.infra.models import Order, OrderEvent, SagaStep
from app.infra.models.base import utcnow
from app.services import audit, orders
from app.services.audit import Actor
from app.services.dashboard import queue_admin
from app.services.events import record_event

RETRY_REFUSALS = {
    "completed": "The order is completed; there is nothing to retry.",
    "cancelled": "The order is cancelled and compensated; there is nothing to retry.",
}
# A step the failed run left in one of these had done its work (and so was undone, or not).
_DID_ITS_WORK = (StepStatus.SUCCEEDED, StepStatus.COMPENSATED, StepStatus.RUNNING)


def _require_reason(reason: str | None) -> str:
    reason = (reason or "").strip()
    if not reason:
        raise ValidationFailed([FieldError("reason", "a reason is required")])
    return reason


def _was_charged(order_id: str) -> bool:
    status = db.session.scalar(
        select(SagaStep.status).where(
            SagaStep.order_id == order_id, SagaStep.name == CAPTURE_PAYMENT
        )
    )
    return status in _DID_ITS_WORK


def retry_refusal(order: Order) -> str | None:
    """Why the order's saga cannot be retried, or None when it can."""
    if order.status == OrderStatus.FAILED:
        return reopen_refusal(
            order.failure_reason, _was_charged(order.id), order.cancel_requested_at is not None
        )
    return RETRY_REFUSALS.get(order.status) if is_final(order.status) else None


def _saga_state(order: Order) -> dict:
    return {"status": order.status, "lease_owner": order.lease_owner}


def retry_saga(order_id: str, queue: JobQueue, actor: Actor, reason: str | None) -> Order:
    """Queue a non-final order's saga again (idempotent: a busy saga ignores the duplicate), or
    re-open a failed order that was never charged and run its saga again from the start."""
    reason = _require_reason(reason)
    order = orders.get_order(order_id)
    refusal = retry_refusal(order)
    if refusal:
        raise Conflict(refusal)
    before = _saga_state(order)
    if order.status == OrderStatus.FAILED:
        before["failure_reason"] = order.failure_reason
        _reopen_failed(order)
    audit.record(
        actor, "order.retry_saga", "order", order.id,
        before=before, after={"status": str(order.status), "queued": True}, reason=reason,
    )
    db.session.commit()
    queue.enqueue_saga(order.id, request_id=order.request_id)
    return order


def _reopen_failed(order: Order) -> None:
    """Failed -> pending, every step back to pending under a new idempotency key (in the
    caller's transaction). Conditional on the order still being failed, uncancelled."""
    failure_reason = order.failure_reason
    now = utcnow()
    reopened = db.session.execute(
        update(Order)
        .where(
            Order.id == order.id,
            Order.status == OrderStatus.FAILED,
            Order.cancel_requested_at.is_(None),
        )
        .values(
            status=OrderStatus.PENDING, failure_reason=None, finished_at=None, lease_owner=None,
            lease_expires_at=None, updated_at=now, version=Order.version + 1,
        )
    )
    if reopened.rowcount != 1:
        db.session.rollback()
        raise Conflict("The order changed meanwhile; reload the page.")
    run = 1 + db.session.scalar(
        select(func.count()).where(
            OrderEvent.order_id == order.id, OrderEvent.type == "order.retried"
        )
    )
    for step in db.session.scalars(select(SagaStep).where(SagaStep.order_id == order.id)):
        step.status = StepStatus.PENDING
        step.attempts = step.compensation_attempts = 0
        step.result = step.error = step.next_attempt_at = None
        step.started_at = step.finished_at = step.compensated_at = None
        # The provider must see the new run's calls as new requests, not replays of the old.
        step.idempotency_key = f"{order.id}:{step.name}:run{run + 1}"
    record_event(order, "order.retried", {"previous_failure_reason": failure_reason})


def cancel_order(order_id: str, queue: JobQueue, actor: Actor, reason: str | None) -> Order:
    """Cancel through the order service; the audit entry commits with the cancel request."""
    reason = _require_reason(reason)
    order = orders.get_order(order_id)
    audit.record(
        actor, "order.cancel", "order", order.id,
        before={"status": order.status}, after={"cancel_requested": True}, reason=reason,
    )
    # cancel_order commits (the audit entry with it) or rolls back both on Conflict.
    return orders.cancel_order(order.id, queue, reason=reason)


def _queue_action(
    actor: Actor, action: str, queue_name: str, reason: str, before=None, after=None
) -> None:
    audit.record(actor, action, "queue", queue_name, before=before, after=after, reason=reason)
    db.session.commit()


def set_queue_paused(queue_name: str, paused: bool, actor: Actor, reason: str | None) -> bool:
    """Pause or resume a queue: workers stop/start taking its jobs within seconds.

    False when it already was so (a second tab, a double submit): nothing changes and nothing is
    audited, since the audit log records changes.
    """
    reason = _require_reason(reason)
    admin = queue_admin()
    try:
        was = queue_name in admin.paused()
        if was == paused:
            return False
        admin.set_paused(queue_name, paused)
    except KeyError:
        raise NotFound("queue") from None
    _queue_action(
        actor, "queue.pause" if paused else "queue.resume", queue_name, reason,
        before={"paused": was}, after={"paused": paused},
    )
    return True


def requeue_failed(
    queue_name: str, job_id: str | None, actor: Actor, reason: str | None
) -> int:
    """Requeue one failed job (job_id) or all of the queue's failed jobs; how many."""
    return _act_on_failed(queue_name, job_id, actor, reason, "requeue")


def delete_failed(queue_name: str, job_id: str | None, actor: Actor, reason: str | None) -> int:
    """Delete one failed job (job_id) or all of the queue's failed jobs; how many."""
    return _act_on_failed(queue_name, job_id, actor, reason, "delete")


def _act_on_failed(
    queue_name: str, job_id: str | None, actor: Actor, reason: str | None, verb: str
) -> int:
    reason = _require_reason(reason)
    admin = queue_admin()
    try:
        ids = [job_id] if job_id else admin.failed_job_ids(queue_name)
    except KeyError:
        raise NotFound("queue") from None
    act = admin.requeue if verb == "requeue" else admin.delete
    done = [i for i in ids if act(queue_name, i)]
    if job_id and not done:
        raise NotFound("failed job")
    _queue_action(
        actor, f"queue.{verb}_failed", queue_name, reason,
        before={"job_ids": done}, after={"count": len(done)},
    )
    return len(done)
