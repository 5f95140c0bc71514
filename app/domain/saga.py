"""The order saga as a pure state machine: steps, their compensations and retry policies.

The saga's durable state is the status of each step (kept in the database by the services). Given
that state, `decide()` says what to do next; the services execute it and record the outcome, so a
saga interrupted anywhere (a killed worker, a lost job) resumes by calling `decide()` again.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum

from app.domain.orders import OrderStatus
from app.domain.retry import RetryPolicy


class StepStatus(StrEnum):
    PENDING = "pending"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    COMPENSATED = "compensated"


@dataclass(frozen=True)
class StepDefinition:
    name: str
    success_event: str
    retry: RetryPolicy
    # The step that undoes this one (run newest first when a later step fails); None: no undo.
    compensation: str | None = None
    compensation_event: str | None = None
    # failure_reason when the retries of a transient error run out.
    exhausted_reason: str = "payment_error"
    # Event recorded when the step fails for good (besides order.failed), and when its retries of a
    # transient error run out.
    failure_event: str | None = None
    exhausted_event: str | None = None


RESERVE_INVENTORY = "reserve_inventory"
CAPTURE_PAYMENT = "capture_payment"
CREATE_SHIPMENT = "create_shipment"
COMPLETE = "complete"

# Compensations retry far longer than actions: giving up on a refund is never the right answer.
COMPENSATION_RETRY = RetryPolicy(max_attempts=20, base_delay=0.5, max_delay=30.0)

STEPS: tuple[StepDefinition, ...] = (
    StepDefinition(
        RESERVE_INVENTORY,
        success_event="inventory.reserved",
        retry=RetryPolicy(max_attempts=5, base_delay=0.1, max_delay=2.0),
        compensation="release_inventory",
        compensation_event="inventory.released",
        exhausted_reason="out_of_stock",
        failure_event="inventory.insufficient",
        exhausted_event="inventory.failed",
    ),
    StepDefinition(
        CAPTURE_PAYMENT,
        success_event="payment.captured",
        retry=RetryPolicy(max_attempts=4, base_delay=0.2, max_delay=2.0),
        compensation="refund_payment",
        compensation_event="payment.refunded",
        exhausted_reason="payment_error",
        failure_event="payment.declined",
        exhausted_event="payment.failed",
    ),
    StepDefinition(
        CREATE_SHIPMENT,
        success_event="shipment.created",
        retry=RetryPolicy(max_attempts=4, base_delay=0.2, max_delay=2.0),
        compensation="cancel_shipment",
        compensation_event="shipment.cancelled",
        exhausted_reason="shipment_failed",
        failure_event="shipment.failed",
        exhausted_event="shipment.failed",
    ),
    StepDefinition(
        COMPLETE,
        success_event="order.completed",
        retry=RetryPolicy(max_attempts=5, base_delay=0.1, max_delay=2.0),
    ),
)
STEP_BY_NAME: dict[str, StepDefinition] = {step.name: step for step in STEPS}


class ActionKind(StrEnum):
    RUN = "run"
    COMPENSATE = "compensate"
    FINISH = "finish"


@dataclass(frozen=True)
class Action:
    kind: ActionKind
    step: str | None = None
    final_status: OrderStatus | None = None


def decide(steps: Mapping[str, StepStatus | str], cancel_requested: bool) -> Action:
    """The next thing the saga must do, from the durable status of each step.

    Forward: run the first step that has not succeeded. After a failure (or a cancellation before
    completion): compensate succeeded steps newest first, then finish failed (or cancelled).

    A cancel the API accepted (202: the order was not final yet) always ends `cancelled`, even when
    a step had already failed and compensation was under way: the contract promises the merchant
    who got 202 a cancelled order, and the undoing is the same either way.
    """
    status = {step.name: StepStatus(steps.get(step.name, StepStatus.PENDING)) for step in STEPS}
    if status[COMPLETE] == StepStatus.SUCCEEDED:
        return Action(ActionKind.FINISH, final_status=OrderStatus.COMPLETED)
    failed = any(s == StepStatus.FAILED for s in status.values())
    if failed or cancel_requested:
        for step in reversed(STEPS):
            if status[step.name] == StepStatus.SUCCEEDED and step.compensation:
                return Action(ActionKind.COMPENSATE, step=step.name)
            if status[step.name] == StepStatus.RUNNING and cancel_requested and not failed:
                # A step may have reached the provider before the worker died; finishing it (it
                # is idempotent) tells us whether there is anything to compensate.
                return Action(ActionKind.RUN, step=step.name)
        final = OrderStatus.CANCELLED if cancel_requested else OrderStatus.FAILED
        return Action(ActionKind.FINISH, final_status=final)
    for step in STEPS:
        if status[step.name] != StepStatus.SUCCEEDED:
            return Action(ActionKind.RUN, step=step.name)
    return Action(ActionKind.FINISH, final_status=OrderStatus.COMPLETED)  # pragma: no cover


# Every event type an order's timeline can hold (webhooks subscribe to these).
ORDER_EVENT_TYPES: frozenset[str] = frozenset(
    {"order.created", "order.cancel_requested", "order.failed", "order.cancelled", "order.retried"}
    | {
        event
        for step in STEPS
        for event in (
            step.success_event,
            step.compensation_event,
            step.failure_event,
            step.exhausted_event,
        )
        if event
    }
)
