"""Driving an order's saga: execute what `domain.saga.decide()` says and record every outcome.

A saga resumes from the database after any crash: `run_saga` is idempotent and safe to call again
at any time. A lease on the order keeps two workers from driving the same saga at once.

Transactions, on the happy path one per provider call: the outcome of step N (its row, attempt and
event) commits together with "step N+1 running", right before step N+1's provider call. Losing an
uncommitted outcome to a crash only repeats a provider call, which is idempotent by key; the
"running" commit before each provider call is what makes a crash resume the call instead of
forgetting it. Local steps commit atomically with their outcome. Each transaction starts by
updating the order row (progress stamp, version, lease renewal, cancel check: `saga_store.hold`).

The steps are a generator (`advance`) that pauses for its driver: to commit, before a local step,
for each step's own work (`StepCall`), at the end. `drive_claimed` drives one saga alone;
`services/saga_batch.py` drives several in lock-step, sharing each transaction.
"""

from __future__ import annotations

import datetime as dt
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from app.domain.errors import ProviderUnavailable, StepFailure, TransientError
from app.domain.orders import OrderStatus, is_final
from app.domain.ports import PaymentProvider, ShippingProvider
from app.domain.saga import COMPENSATION_RETRY, STEP_BY_NAME, ActionKind, StepStatus, decide
from app.extensions import db
from app.infra.models.base import utcnow
from app.observability.logs import current_request_id
from app.services import outbox, saga_store
from app.services.saga_pauses import Answer, Pause, StepCall, Steps
from app.services.saga_steps import COMPENSATIONS, EXECUTORS, LOCAL
from app.services.saga_store import LeaseLost, Saga, StepRow
from app.services.saga_waits import (
    may_wait,
    payment_held,
    until_the_breaker_allows,
    wait_for_provider,
    within_lease,
)

log = logging.getLogger(__name__)

LEASE_SECONDS = 20


@dataclass
class SagaContext:
    """What a saga run needs from outside: the providers, who runs it, and how to wait."""

    payments: PaymentProvider
    shipping: ShippingProvider
    worker: str = "worker"
    sleep: Callable[[float], None] = time.sleep
    lease_seconds: int = LEASE_SECONDS
    # How long a step may wait for a provider whose circuit is open without using up its tries
    # (counted from the step's first try); past it, an open circuit counts as a failed try.
    circuit_wait_seconds: float = 60.0
    on_step: Callable[[str, str, str, float], None] | None = field(default=None)
    # Called at every step boundary with "before:<step>" or "after:<step>" (the provider answered,
    # nothing recorded yet): the fault-injection tests stop a worker there and SIGKILL it.
    on_boundary: Callable[[str, str], None] | None = field(default=None)


@dataclass(frozen=True)
class SagaRun:
    """How a run ended; for a final order also what the SLO count needs, so nobody re-reads it."""

    status: str
    failure_reason: str | None = None
    created_at: dt.datetime | None = None
    finished_at: dt.datetime | None = None
    # The final transaction also published the order's events (its merchant has no webhooks).
    events_published: bool = False
    # The id of the request that placed the order: the job's own log lines about it carry it.
    request_id: str | None = None


def _lease(order_id: str, ctx: SagaContext) -> bool:
    """Claim or renew the order's lease and commit it; False when another live worker holds it."""
    claimed = saga_store.claim(order_id, ctx.worker, ctx.lease_seconds) is not None
    db.session.commit()
    return claimed


def run_saga(order_id: str, ctx: SagaContext) -> str:
    """Drive the saga until the order is final; its status, or "busy" if leased elsewhere."""
    return drive_saga(order_id, ctx).status


def drive_saga(order_id: str, ctx: SagaContext) -> SagaRun:
    """run_saga, telling the caller how the run ended."""
    saga = saga_store.claim(order_id, ctx.worker, ctx.lease_seconds, hold=True)
    if saga is None:
        db.session.rollback()
        return SagaRun("busy")
    # From here the log lines are this order's, whichever job drives it (a batch's leader, too).
    current_request_id.set(saga.order.request_id)
    if is_final(saga.order.status):
        db.session.rollback()  # a final order's lease no longer matters
        return ended(saga)
    return drive_claimed(saga, ctx)


def drive_claimed(saga: Saga, ctx: SagaContext) -> SagaRun:
    """Drive a claimed saga alone: commit at each of its pauses, sleep through its retry delays."""
    order_id = saga.order.id
    steps = advance(saga, ctx)
    answer: Answer = Answer()
    try:
        while True:
            pause = answer.resume(steps)
            answer = Answer()
            if isinstance(pause, StepCall):
                answer = Answer.of(pause)
            elif pause is Pause.COMMIT:
                saga_store.commit(saga)
            elif pause is Pause.FINAL:
                return ended(saga, published=commit_final(saga))
            elif pause is Pause.HELD:
                give_up_lease(saga)
                return SagaRun("held", request_id=saga.order.request_id)
            elif pause is not Pause.LOCAL:
                ctx.sleep(pause)
    except LeaseLost:
        saga_store.rollback(saga)
        saga_store.release(order_id, ctx.worker)  # if it is still ours
        db.session.commit()
        log.warning("saga lease lost or step settled elsewhere", extra={"order_id": order_id})
        return SagaRun("busy")
    except BaseException:
        saga_store.rollback(saga)  # half-done step work never commits
        saga_store.release(order_id, ctx.worker)
        db.session.commit()
        raise


def advance(saga: Saga, ctx: SagaContext) -> Steps:
    """The saga's steps from where its rows stand, as a generator that pauses for its driver.

    Work between two COMMIT pauses is one transaction's worth. Driving one saga alone
    (drive_claimed) or several in lock-step, sharing each commit (saga_batch), runs the same
    steps, provider calls and outcomes in the same order for each saga; the batch driver only
    groups the statements of several sagas (its hold, its flush, a kind of local step).
    """
    order = saga.order
    while True:
        action = decide(
            {name: step.status for name, step in saga.steps.items()},
            cancel_requested=order.cancel_requested_at is not None,
        )
        if action.kind == ActionKind.FINISH:
            _finish(saga, action.final_status)
        if is_final(order.status):
            yield Pause.FINAL
            return
        if action.kind == ActionKind.RUN and payment_held(saga, action.step):
            # Held, not failed: no attempt is used; the scheduler's recovery (or switching
            # the flag off, see services.flags) queues the saga again.
            yield Pause.HELD
            return
        if action.kind == ActionKind.RUN:
            yield from _run_step(saga, saga.steps[action.step], ctx)
        else:
            yield from _compensate_step(saga, saga.steps[action.step], ctx)


def ended(saga: Saga, published: bool = False) -> SagaRun:
    """How a run ended, from the saga as it stands."""
    order = saga.order
    return SagaRun(
        order.status, order.failure_reason, order.created_at, order.finished_at, published,
        order.request_id,
    )


def commit_final(saga: Saga) -> bool:
    """Commit the transaction that made the order final, publishing its events in it when
    nobody subscribes to them; True if published."""
    saga_store.flush(saga)
    published = outbox.publish_unsubscribed_events(saga.order.id)
    saga_store.commit(saga)
    return published


def give_up_lease(saga: Saga) -> None:
    """Commit the progress made so far and free the saga for whichever worker runs it next."""
    if not saga.progressed:
        saga_store.rollback(saga)  # only the claim's touch: the order did not move
    saga_store.release(saga.order.id, saga.worker)
    saga_store.commit(saga)


def _record_attempt(
    saga: Saga,
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
    saga_store.add_attempt(
        saga,
        step=step,
        kind=kind,
        attempt=attempt,
        outcome=outcome,
        error=error,
        started_at=started_at,
        duration_ms=round(duration, 3),
    )
    if ctx.on_step:
        ctx.on_step(step, kind, outcome, duration / 1000)


def _boundary(saga: Saga, ctx: SagaContext, point: str) -> None:
    if ctx.on_boundary is None:
        return
    transaction = db.session().get_transaction()
    ctx.on_boundary(saga.order.id, point)
    if db.session().get_transaction() is not transaction:
        # The hook ended our transaction (a test's hook commits to let a cancel through): the
        # order row is no longer locked by us, so the next hold() must read it again.
        saga.holding = False


def _run_step(saga: Saga, step: StepRow, ctx: SagaContext) -> Steps:
    definition = STEP_BY_NAME[step.name]
    order = saga.order
    _boundary(saga, ctx, f"before:{step.name}")
    local = step.name in LOCAL
    if local:
        yield Pause.LOCAL
    saga_store.hold(saga, **_start_processing(saga))
    if order.cancel_requested_at is not None and step.status == StepStatus.PENDING:
        return  # cancelled at this boundary: decide() compensates instead of starting the step
    attempt, before = step.attempts + 1, step.status
    started_at = step.started_at or utcnow()
    if not local:
        saga_store.set_step(
            saga, step, before, status=StepStatus.RUNNING, attempts=attempt, started_at=started_at
        )
        yield Pause.COMMIT  # durable "running" before the provider call: a crash resumes it
        before = StepStatus.RUNNING
    started, attempt_at = time.perf_counter(), utcnow()
    try:
        execute = EXECUTORS[step.name]
        result = yield StepCall(step.name, order, local, lambda: execute(order, step, ctx))
    except StepFailure as failure:
        saga_store.hold(saga, failure_reason=failure.reason)
        saga_store.set_step(
            saga,
            step,
            before,
            status=StepStatus.FAILED,
            attempts=attempt,
            started_at=started_at,
            error=failure.message,
            finished_at=utcnow(),
        )
        _record_attempt(
            saga, step.name, "action", attempt, "failed", started, attempt_at, failure.message, ctx
        )
        if definition.failure_event:
            saga_store.add_event(
                saga,
                definition.failure_event,
                {"reason": failure.reason, "message": failure.message},
            )
        return
    except TransientError as error:
        if isinstance(error, ProviderUnavailable) and may_wait(
            started_at, ctx.circuit_wait_seconds
        ):
            yield from wait_for_provider(saga, step, before, attempt, error, ctx.lease_seconds)
            return
        retry = definition.retry.should_retry(error, attempt)
        saga_store.hold(saga, **({} if retry else {"failure_reason": definition.exhausted_reason}))
        _record_attempt(
            saga,
            step.name,
            "action",
            attempt,
            "retryable_error",
            started,
            attempt_at,
            str(error),
            ctx,
        )
        values = {"attempts": attempt, "started_at": started_at, "error": str(error)}
        if retry:
            saga_store.set_step(saga, step, before, status=StepStatus.PENDING, **values)
            yield Pause.COMMIT  # never sleep inside a transaction
            yield definition.retry.delay(attempt)
            return
        saga_store.set_step(
            saga, step, before, status=StepStatus.FAILED, finished_at=utcnow(), **values
        )
        if definition.exhausted_event:
            saga_store.add_event(
                saga,
                definition.exhausted_event,
                {"reason": definition.exhausted_reason, "attempts": attempt, "message": str(error)},
            )
        return
    _boundary(saga, ctx, f"after:{step.name}")
    saga_store.hold(saga)
    if result is None:  # the step declined to finish (a cancel arrived): decide() again
        if before == StepStatus.RUNNING:
            saga_store.set_step(saga, step, before, status=StepStatus.PENDING, attempts=attempt)
        yield Pause.COMMIT  # so that the next hold() reads the cancel request
        return
    saga_store.set_step(
        saga,
        step,
        before,
        status=StepStatus.SUCCEEDED,
        attempts=attempt,
        started_at=started_at,
        result=result,
        error=None,
        finished_at=utcnow(),
    )
    _record_attempt(saga, step.name, "action", attempt, "succeeded", started, attempt_at, None, ctx)
    saga_store.add_event(saga, definition.success_event, result)


def _start_processing(saga: Saga) -> dict[str, str]:
    """A pending order becomes processing with its first step's transaction."""
    return {"status": OrderStatus.PROCESSING} if saga.order.status == OrderStatus.PENDING else {}


def _compensate_step(saga: Saga, step: StepRow, ctx: SagaContext) -> Steps:
    definition = STEP_BY_NAME[step.name]
    name = definition.compensation
    _boundary(saga, ctx, f"before:{name}")
    if name in LOCAL:
        yield Pause.LOCAL
    saga_store.hold(saga)
    attempt = step.compensation_attempts + 1
    if name not in LOCAL:
        saga_store.set_step(saga, step, StepStatus.SUCCEEDED, compensation_attempts=attempt)
        yield Pause.COMMIT  # the attempt is counted before the provider hears of it
    started, started_at = time.perf_counter(), utcnow()
    try:
        compensate = COMPENSATIONS[name]
        detail = yield StepCall(
            name, saga.order, name in LOCAL, lambda: compensate(saga.order, step, ctx)
        )
        _boundary(saga, ctx, f"after:{name}")
    except TransientError as error:
        saga_store.hold(saga)
        _record_attempt(
            saga, name, "compensation", attempt, "retryable_error", started, started_at,
            str(error), ctx,
        )
        yield Pause.COMMIT
        delay = COMPENSATION_RETRY.delay(attempt)
        if isinstance(error, ProviderUnavailable):  # come back when the breaker lets calls through
            delay = until_the_breaker_allows(error)
        yield within_lease(delay, ctx.lease_seconds)
        return
    saga_store.hold(saga)
    saga_store.set_step(
        saga,
        step,
        StepStatus.SUCCEEDED,
        status=StepStatus.COMPENSATED,
        compensation_attempts=attempt,
        compensated_at=utcnow(),
    )
    _record_attempt(
        saga, name, "compensation", attempt, "succeeded", started, started_at, None, ctx
    )
    saga_store.add_event(saga, definition.compensation_event, detail)


def _finish(saga: Saga, final_status: OrderStatus) -> None:
    order = saga.order
    if final_status == OrderStatus.COMPLETED:
        return  # the complete step already made the order final, atomically
    if final_status == OrderStatus.FAILED:
        saga_store.hold(saga, status=final_status, finished_at=utcnow())
        saga_store.add_event(saga, "order.failed", {"reason": order.failure_reason})
    else:
        saga_store.hold(saga, status=final_status, finished_at=utcnow(), failure_reason=None)
        saga_store.add_event(saga, "order.cancelled", {})
