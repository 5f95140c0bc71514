"""Driving an order's saga: execute what `domain.saga.decide()` says and record every outcome.

Each step's outcome is committed before the next step starts, so a saga resumes from the database
after any crash: `run_saga` is idempotent and safe to call again at any time. A lease on the order
keeps two workers from driving the same saga at once.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import or_, select, update
from sqlalchemy.orm import selectinload
from sqlalchemy.orm.attributes import set_committed_value

from app.domain.errors import StepFailure, TransientError
from app.domain.orders import OrderStatus, check_transition, is_final
from app.domain.ports import PaymentProvider, ShippingProvider
from app.domain.saga import (
    COMPENSATION_RETRY,
    STEP_BY_NAME,
    ActionKind,
    StepStatus,
    decide,
)
from app.extensions import db
from app.infra.models import Order, SagaStep, SagaStepAttempt
from app.infra.models.base import utcnow
from app.services import flags
from app.services.events import record_event
from app.services.saga_steps import COMPENSATIONS, EXECUTORS

log = logging.getLogger(__name__)

LEASE_SECONDS = 20
# Steps whose whole effect is in our database: they commit atomically with their outcome, so no
# separate "running" commit is needed before them (only provider calls need one).
LOCAL_STEPS = frozenset({"reserve_inventory", "complete"})


@dataclass
class SagaContext:
    """What a saga run needs from outside: the providers, who runs it, and how to wait."""

    payments: PaymentProvider
    shipping: ShippingProvider
    worker: str = "worker"
    sleep: Callable[[float], None] = time.sleep
    lease_seconds: int = LEASE_SECONDS
    on_step: Callable[[str, str, str, float], None] | None = field(default=None)
    # Called at every step boundary with "before:<step>" or "after:<step>" (the provider answered,
    # nothing recorded yet): the fault-injection tests stop a worker there and SIGKILL it.
    on_boundary: Callable[[str, str], None] | None = field(default=None)


def _lease(order_id: str, ctx: SagaContext) -> bool:
    """Claim or renew the order's lease; False when another live worker holds it."""
    import datetime as dt

    now = utcnow()
    result = db.session.execute(
        update(Order)
        .where(
            Order.id == order_id,
            or_(
                Order.lease_expires_at.is_(None),
                Order.lease_expires_at < now,
                Order.lease_owner == ctx.worker,
            ),
        )
        .values(
            lease_owner=ctx.worker, lease_expires_at=now + dt.timedelta(seconds=ctx.lease_seconds)
        )
    )
    db.session.commit()
    return result.rowcount == 1


def _release(order_id: str, ctx: SagaContext) -> None:
    db.session.rollback()
    db.session.execute(
        update(Order)
        .where(Order.id == order_id, Order.lease_owner == ctx.worker)
        .values(lease_owner=None, lease_expires_at=None)
    )
    db.session.commit()


def run_saga(order_id: str, ctx: SagaContext) -> str:
    """Drive the saga until the order is final; its status, or "busy" if leased elsewhere."""
    if not _lease(order_id, ctx):
        return "busy"
    lease_renew_at = time.monotonic() + ctx.lease_seconds / 2
    session = db.session()
    # While we hold the lease only this run changes the saga (a cancel request is re-read at each
    # boundary), so committed objects stay valid: no reload after every commit.
    expire_on_commit, session.expire_on_commit = session.expire_on_commit, False
    order = None
    try:
        order = db.session.scalar(
            select(Order).options(selectinload(Order.lines)).where(Order.id == order_id)
        )
        if order is None:
            return "missing"
        steps = {
            s.name: s
            for s in db.session.scalars(select(SagaStep).where(SagaStep.order_id == order_id))
        }
        while True:
            if is_final(order.status):
                return order.status
            action = decide(
                {name: step.status for name, step in steps.items()},
                cancel_requested=order.cancel_requested_at is not None,
            )
            if action.kind == ActionKind.FINISH:
                _finish(order, action.final_status)
                return order.status
            if order.status == OrderStatus.PENDING:
                _touch(order, status=OrderStatus.PROCESSING)  # committed with the step
            if action.kind == ActionKind.RUN and _payment_held(order, action.step):
                # Held, not failed: no attempt is used; the scheduler's recovery (or switching
                # the flag off, see services.flags) queues the saga again.
                return "held"
            if action.kind == ActionKind.RUN:
                _run_step(order, steps[action.step], ctx)
            else:
                _compensate_step(order, steps[action.step], ctx)
            # Renew once half the lease is gone (not after every step: each renewal is a commit).
            if time.monotonic() >= lease_renew_at:
                if not _lease(order_id, ctx):
                    log.warning("saga lease lost", extra={"order_id": order_id})
                    return "busy"
                lease_renew_at = time.monotonic() + ctx.lease_seconds / 2
    finally:
        session.expire_on_commit = expire_on_commit
        if order is None or not is_final(order.status):
            _release(order_id, ctx)  # a final order's lease no longer matters
        else:
            db.session.rollback()


def _payment_held(order: Order, step: str) -> bool:
    """The payment_hold kill switch stops sagas right before they capture a payment.

    The process snapshot may lag a change by up to 5 s, so a "held" answer is confirmed from the
    database: sagas re-queued the moment the hold is lifted must not be held again by a stale view.
    """
    if step != "capture_payment" or not flags.is_enabled(flags.PAYMENT_HOLD, order.merchant_id):
        return False
    return flags.is_enabled_now(flags.PAYMENT_HOLD, order.merchant_id)


def _touch(order: Order, status: str | None = None) -> None:
    if status is not None:
        check_transition(order.status, status)
        order.status = status
    order.updated_at = utcnow()
    order.version = (order.version or 0) + 1


def _record_attempt(
    order: Order,
    step: str,
    kind: str,
    attempt: int,
    outcome: str,
    started: float,
    started_at,
    error: str | None,
    ctx: SagaContext,
) -> None:
    duration = (time.perf_counter() - started) * 1000
    db.session.add(
        SagaStepAttempt(
            order_id=order.id,
            step=step,
            kind=kind,
            attempt=attempt,
            outcome=outcome,
            error=error,
            started_at=started_at,
            duration_ms=round(duration, 3),
            worker=ctx.worker,
        )
    )
    if ctx.on_step:
        ctx.on_step(step, kind, outcome, duration / 1000)


def _settle(step: SagaStep, expected: StepStatus, **values: Any) -> bool:
    """Record a step's outcome only if the step is still `expected`, in the same transaction as
    the step's own database work (a reservation, a release).

    Normally one worker drives a saga (the lease), but a worker that outlived its lease (a long
    pause) could finish a step a second worker already finished; the conditional update lets
    exactly one of them win, and the loser's work rolls back, so stock is never moved twice.
    """
    stamp = "compensated_at" if values.get("status") == StepStatus.COMPENSATED else "finished_at"
    values.setdefault(stamp, utcnow())
    db.session.flush()  # a local step's "running" is written in this same transaction
    result = db.session.execute(
        update(SagaStep)
        .where(SagaStep.seq == step.seq, SagaStep.status == expected)
        .values(**values)
        .execution_options(synchronize_session=False)
    )
    if result.rowcount != 1:
        db.session.rollback()
        log.warning("saga step settled elsewhere", extra={"order_id": step.order_id})
        return False
    for name, value in values.items():  # keep the loaded step in step with the row
        set_committed_value(step, name, value)
    return True


def _boundary(ctx: SagaContext, order_id: str, point: str) -> None:
    if ctx.on_boundary is not None:
        ctx.on_boundary(order_id, point)


def _run_step(order: Order, step: SagaStep, ctx: SagaContext) -> None:
    definition = STEP_BY_NAME[step.name]
    _boundary(ctx, order.id, f"before:{step.name}")
    db.session.refresh(order, ["cancel_requested_at"])
    if order.cancel_requested_at is not None and step.status == StepStatus.PENDING:
        return  # cancelled at this boundary: decide() compensates instead of starting the step
    step.status = StepStatus.RUNNING
    step.attempts += 1
    step.started_at = step.started_at or utcnow()
    attempt = step.attempts
    if step.name not in LOCAL_STEPS:
        db.session.commit()  # durable "running" before the provider call: a crash resumes it
    started, started_at = time.perf_counter(), utcnow()
    try:
        result = EXECUTORS[step.name](order, step, ctx)
    except StepFailure as failure:
        db.session.rollback()
        step.attempts = attempt
        step.status = StepStatus.FAILED
        step.error = failure.message
        step.finished_at = utcnow()
        order.failure_reason = failure.reason
        _touch(order)
        _record_attempt(
            order, step.name, "action", attempt, "failed", started, started_at, failure.message, ctx
        )
        if definition.failure_event:
            record_event(
                order,
                definition.failure_event,
                {"reason": failure.reason, "message": failure.message},
            )
        db.session.commit()
        return
    except TransientError as error:
        db.session.rollback()
        step.attempts = attempt
        _record_attempt(
            order,
            step.name,
            "action",
            attempt,
            "retryable_error",
            started,
            started_at,
            str(error),
            ctx,
        )
        step.error = str(error)
        if not definition.retry.should_retry(error, attempt):
            step.status = StepStatus.FAILED
            step.finished_at = utcnow()
            order.failure_reason = definition.exhausted_reason
            _touch(order)
            if definition.exhausted_event:
                record_event(
                    order,
                    definition.exhausted_event,
                    {
                        "reason": definition.exhausted_reason,
                        "attempts": attempt,
                        "message": str(error),
                    },
                )
            db.session.commit()
            return
        step.status = StepStatus.PENDING
        db.session.commit()
        ctx.sleep(definition.retry.delay(attempt))
        return
    _boundary(ctx, order.id, f"after:{step.name}")
    if result is None:  # the step declined to finish (a cancel arrived): decide() again
        db.session.rollback()
        step.status = StepStatus.PENDING
        db.session.commit()
        return
    if not _settle(
        step, StepStatus.RUNNING, status=StepStatus.SUCCEEDED, result=result, error=None
    ):
        return
    _touch(order)
    _record_attempt(
        order, step.name, "action", attempt, "succeeded", started, started_at, None, ctx
    )
    record_event(order, definition.success_event, result)
    db.session.commit()


def _compensate_step(order: Order, step: SagaStep, ctx: SagaContext) -> None:
    definition = STEP_BY_NAME[step.name]
    _boundary(ctx, order.id, f"before:{definition.compensation}")
    step.compensation_attempts += 1
    attempt = step.compensation_attempts
    db.session.commit()
    started, started_at = time.perf_counter(), utcnow()
    try:
        detail = COMPENSATIONS[definition.compensation](order, step, ctx)
        _boundary(ctx, order.id, f"after:{definition.compensation}")
    except TransientError as error:
        db.session.rollback()
        _record_attempt(
            order,
            definition.compensation,
            "compensation",
            attempt,
            "retryable_error",
            started,
            started_at,
            str(error),
            ctx,
        )
        db.session.commit()
        # Never sleep past our own lease: another worker would take the saga over meanwhile.
        ctx.sleep(min(COMPENSATION_RETRY.delay(attempt), ctx.lease_seconds / 2))
        return
    if not _settle(step, StepStatus.SUCCEEDED, status=StepStatus.COMPENSATED):
        return
    _touch(order)
    _record_attempt(
        order,
        definition.compensation,
        "compensation",
        attempt,
        "succeeded",
        started,
        started_at,
        None,
        ctx,
    )
    record_event(order, definition.compensation_event, detail)
    db.session.commit()


def _finish(order: Order, final_status: OrderStatus) -> None:
    if final_status == OrderStatus.COMPLETED:
        return  # the complete step already made the order final, atomically
    _touch(order, status=final_status)
    order.finished_at = utcnow()
    if final_status == OrderStatus.FAILED:
        record_event(order, "order.failed", {"reason": order.failure_reason})
    else:
        order.failure_reason = None
        record_event(order, "order.cancelled", {})
    db.session.commit()
