"""Operator actions on orders and queues from the dashboard; each is audited with its reason.

"Retry" re-drives a saga that is not final (stuck: a lost job, a killed worker, a held payment).
A failed order cannot be retried: its saga already compensated (stock released, payment refunded or
never taken), so running the steps again would charge a customer who was told the order failed.
The way forward for a failed order is a new order by the customer.
"""

from __future__ import annotations

from app.domain.errors import Conflict, FieldError, NotFound, ValidationFailed
from app.domain.orders import is_final
from app.domain.ports import JobQueue
from app.extensions import db
from app.infra.models import Order
from app.services import audit, orders
from app.services.audit import Actor
from app.services.dashboard import queue_admin

RETRY_REFUSALS = {
    "failed": "A failed order is final: its saga already compensated (stock released, payment "
    "refunded or never taken). Ask the customer to place a new order.",
    "completed": "The order is completed; there is nothing to retry.",
    "cancelled": "The order is cancelled and compensated; there is nothing to retry.",
}


def _require_reason(reason: str | None) -> str:
    reason = (reason or "").strip()
    if not reason:
        raise ValidationFailed([FieldError("reason", "a reason is required")])
    return reason


def retry_refusal(order: Order) -> str | None:
    """Why the order's saga cannot be retried, or None when it can."""
    return RETRY_REFUSALS.get(order.status) if is_final(order.status) else None


def _saga_state(order: Order) -> dict:
    return {"status": order.status, "lease_owner": order.lease_owner}


def retry_saga(order_id: str, queue: JobQueue, actor: Actor, reason: str | None) -> Order:
    """Queue a non-final order's saga again (idempotent: a busy saga ignores the duplicate)."""
    reason = _require_reason(reason)
    order = orders.get_order(order_id)
    refusal = retry_refusal(order)
    if refusal:
        raise Conflict(refusal)
    audit.record(
        actor, "order.retry_saga", "order", order.id,
        before=_saga_state(order), after={"queued": True}, reason=reason,
    )
    db.session.commit()
    queue.enqueue_saga(order.id, request_id=order.request_id)
    return order


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


def set_queue_paused(queue_name: str, paused: bool, actor: Actor, reason: str | None) -> None:
    """Pause or resume a queue: workers stop/start taking its jobs within seconds."""
    reason = _require_reason(reason)
    admin = queue_admin()
    try:
        was = queue_name in admin.paused()
        admin.set_paused(queue_name, paused)
    except KeyError:
        raise NotFound("queue") from None
    _queue_action(
        actor, "queue.pause" if paused else "queue.resume", queue_name, reason,
        before={"paused": was}, after={"paused": paused},
    )


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
