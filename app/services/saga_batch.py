"""Driving several sagas together: one shared transaction per round instead of one per saga.

A worker draining a backlog takes several waiting sagas at once (worker/jobs.py). Each saga runs
exactly the steps it would run alone (`saga.advance`, the same generator), but the sagas move in
lock-step: every round advances each of them to its next pause, then one flush of all their
buffered writes and one commit serve the whole round. The claim and the start-of-transaction
order update (`hold`) are one statement for all of them too. On PostgreSQL that turns ~12 round
trips per saga into ~4.

What keeps this as safe as driving a saga alone:
- Every pause is a point a saga resumes from (the lone driver commits at most of them), so a crash
  anywhere resumes from what committed the usual way.
- Provider calls still happen after the commit that recorded "running" (the round before).
- Local steps (the ones that update product rows) wait until every saga of the round reached its
  pause; then the round locks all their products in id order at once and runs them: no provider
  call happens while a product row is locked, and two batches never deadlock.
- Anything unusual ends the batch: an error or a lost lease rolls the round back (all of it: the
  sagas share the transaction) and each saga not yet final is driven alone from what committed;
  a payment hold also falls back to the lone driver, which knows how to leave a held order
  untouched. A saga that must wait for a retry leaves the batch and is driven alone once its delay
  has passed.
- A round's provider calls, when they turn out slow, are made concurrently (threads): a slow
  provider costs a round about two calls' time, not the sum of them, so batching does not stretch
  an order's time to final.
- On SQLite the sagas of a batch run one after another, each alone.
"""

from __future__ import annotations

import contextvars
import logging
import os
import time
from concurrent.futures import ThreadPoolExecutor

from app.domain.orders import is_final
from app.extensions import db
from app.observability.logs import current_log_fields, current_request_id
from app.services import outbox, saga_steps, saga_store, saga_store_batch
from app.services.saga import SagaContext, SagaRun, advance, drive_saga, ended
from app.services.saga_pauses import Answer, Pause, StepCall, Steps
from app.services.saga_store import LeaseLost, Saga, SagaOrder

log = logging.getLogger(__name__)


class _FallBack(Exception):
    """The batch stops here; the sagas still going are driven alone."""


def drive_sagas(order_ids: list[str], ctx: SagaContext) -> dict[str, SagaRun]:
    """Drive these orders' sagas until each is final (or busy elsewhere, or held); by order id."""
    runs: dict[str, SagaRun] = {}
    # A saga queued twice (a cancel queues it again while its first job still waits) is taken
    # twice off the queue: it is driven once.
    order_ids = list(dict.fromkeys(order_ids))
    if not saga_store.on_postgresql():
        # SQLite: one writer at a time, and the simulated providers write their ledger through
        # their own connection during a round: a shared open write transaction would lock them
        # out. The sagas run one after another (the batch still saves their jobs' overhead).
        _drive_alone(order_ids, runs, ctx)
        return runs
    claimed = saga_store_batch.claim_many(order_ids, ctx.worker, ctx.lease_seconds)
    active: list[tuple[Saga, Steps]] = []
    for order_id in order_ids:
        saga = claimed.get(order_id)
        if saga is None:
            runs[order_id] = SagaRun("busy")
        elif is_final(saga.order.status):
            runs[order_id] = ended(saga)
        else:
            active.append((saga, advance(saga, ctx)))
    if not active:
        db.session.rollback()  # nothing to do: the claims need not commit
        return runs
    delayed: list[tuple[float, str]] = []  # (monotonic time due, order id)
    job_log_context = current_log_fields.get(), current_request_id.get()
    try:
        while active:
            active = _run_round(active, runs, delayed, ctx)
    except (_FallBack, LeaseLost, Exception) as error:  # noqa: BLE001 - every saga is re-driven
        _log_as_job(job_log_context)
        db.session.rollback()  # this round's work, of every saga: what committed stays
        for _, steps in active:
            steps.close()
        if not isinstance(error, _FallBack):
            log.warning("saga batch stopped; its sagas go on alone", exc_info=True)
        _drive_alone([s.order.id for s, _ in active if s.order.id not in runs], runs, ctx)
    finally:
        _log_as_job(job_log_context)
    for due, order_id in sorted(delayed):
        ctx.sleep(max(0.0, due - time.monotonic()))
        _drive_alone([order_id], runs, ctx)
    return runs


def _log_as(order: SagaOrder) -> None:
    """Log lines from here on carry this order's id and request id (not the leading job's)."""
    current_log_fields.set({**(current_log_fields.get() or {}), "order_id": order.id})
    current_request_id.set(order.request_id)


def _log_as_job(context: tuple) -> None:
    """Log lines from here on carry the job's own context again."""
    current_log_fields.set(context[0])
    current_request_id.set(context[1])


def _run_round(
    active: list[tuple[Saga, Steps]],
    runs: dict[str, SagaRun],
    delayed: list[tuple[float, str]],
    ctx: SagaContext,
) -> list[tuple[Saga, Steps]]:
    """Advance every saga to its next commit (or end) in one transaction; the ones going on.

    First each saga runs until it pauses; the round's provider calls are then made (at once if
    they are slow) and their answers handed back, until no saga waits for one; then the sagas
    paused before a local step take their product locks together, and their local steps run,
    each kind for all of them at once where it has a form for that (saga_steps.MANY).
    """
    if saga_store_batch.hold_many([saga for saga, _ in active]):
        raise _FallBack  # another worker took one over: the lone driver sorts that out
    going: list[tuple[Saga, Steps]] = []
    local: list[tuple[Saga, Steps]] = []
    final: list[Saga] = []
    touched: dict[str, Saga] = {}  # every saga advanced in this transaction
    waiting = [(saga, steps, Answer()) for saga, steps in active]
    while waiting:
        calls: list[tuple[Saga, Steps, StepCall]] = []
        local_calls: list[tuple[Saga, Steps, StepCall]] = []
        for saga, steps, answer in waiting:
            touched[saga.order.id] = saga
            _log_as(saga.order)
            pause = answer.resume(steps)
            if isinstance(pause, StepCall):
                (local_calls if pause.local else calls).append((saga, steps, pause))
            elif pause is Pause.COMMIT:
                going.append((saga, steps))
            elif pause is Pause.LOCAL:
                local.append((saga, steps))
            elif pause is Pause.FINAL:
                final.append(saga)
            elif pause is Pause.HELD:
                raise _FallBack
            else:  # a retry delay: nothing is buffered (it follows a COMMIT pause)
                steps.close()
                delayed.append((time.monotonic() + pause, saga.order.id))
                runs[saga.order.id] = SagaRun("delayed")
        if calls or local_calls:
            answers = _make_calls([c for _, _, c in calls]) if calls else _run_local(local_calls)
            made = calls or local_calls
            waiting = [(s, steps, a) for (s, steps, _), a in zip(made, answers, strict=True)]
        elif local:
            saga_store_batch.lock_products(
                {line.product_id for saga, _ in local for line in saga.order.lines}
            )
            waiting, local = [(saga, steps, Answer()) for saga, steps in local], []
        else:
            waiting = []
    _commit(touched, final, runs)
    return going


def _run_local(calls: list[tuple[Saga, Steps, StepCall]]) -> list[Answer]:
    """The round's local steps, each kind in one go where saga_steps has a form for several
    orders; their answers in order."""
    answers: dict[int, Answer] = {}
    by_step: dict[str, list[int]] = {}
    for index, (_, _, call) in enumerate(calls):
        by_step.setdefault(call.step, []).append(index)
    for step, indexes in by_step.items():
        results = None
        if step in saga_steps.MANY and len(indexes) > 1:
            results = saga_steps.MANY[step]([calls[i][2].order for i in indexes])
        for position, index in enumerate(indexes):
            answers[index] = (
                Answer.of(calls[index][2]) if results is None else Answer(results[position])
            )
    return [answers[index] for index in range(len(calls))]


# Provider calls of a round run on these threads (per process) once one turned out slow.
CALL_THREADS = 8
SLOW_CALL_SECONDS = 0.002
_pool: tuple[int, ThreadPoolExecutor] | None = None


def _make_calls(calls: list[StepCall]) -> list[Answer]:
    """Make the round's provider calls; their answers in order.

    One by one while they answer fast (a thread hand-off costs more than a simulator's call);
    as soon as one takes longer (a real provider's network time, a latency drill) the rest go
    at once on threads, so a round costs about two calls' time, not the sum of all of them.
    Each thread runs in a copy of this thread's context (the app context; the log context of
    the call's order).
    """
    global _pool
    answers: list[Answer] = []
    for index, call in enumerate(calls):
        started = time.perf_counter()
        answers.append(Answer.of(call))
        if time.perf_counter() - started >= SLOW_CALL_SECONDS:
            rest = calls[index + 1 :]
            break
    else:
        return answers
    if _pool is None or _pool[0] != os.getpid():  # threads do not survive a fork
        _pool = (os.getpid(), ThreadPoolExecutor(CALL_THREADS, thread_name_prefix="provider"))
    futures = [_pool[1].submit(_context_of(call).run, Answer.of, call) for call in rest]
    return answers + [future.result() for future in futures]


def _context_of(call: StepCall) -> contextvars.Context:
    """A copy of this thread's context (the app context) logging as the call's order."""
    context = contextvars.copy_context()
    context.run(_log_as, call.order)
    return context


def _commit(touched: dict[str, Saga], final: list[Saga], runs: dict[str, SagaRun]) -> None:
    """One flush and one commit for every saga advanced in this transaction."""
    saga_store_batch.flush_many(list(touched.values()))
    published = outbox.publish_unsubscribed_events_of([saga.order.id for saga in final])
    db.session.commit()
    saga_store_batch.committed(touched.values())
    for saga in final:
        runs[saga.order.id] = ended(saga, saga.order.id in published)


def _drive_alone(order_ids: list[str], runs: dict[str, SagaRun], ctx: SagaContext) -> None:
    """Drive each saga by itself from what committed; every one is tried before an error is
    raised, so one failing saga strands none of the others (they would wait for their lease)."""
    first_error: BaseException | None = None
    job_context = current_log_fields.get(), current_request_id.get()
    job_fields, job_request_id = job_context[0] or {}, job_context[1]
    for order_id in order_ids:
        # Logged as that order; drive_saga adds its request id once it has read the order.
        current_log_fields.set({**job_fields, "order_id": order_id})
        current_request_id.set(job_request_id if job_fields.get("order_id") == order_id else None)
        try:
            runs[order_id] = drive_saga(order_id, ctx)
        except Exception as error:  # noqa: BLE001 - re-raised below, after the others ran
            first_error = first_error or error
    _log_as_job(job_context)
    if first_error is not None:
        raise first_error
