"""How a saga waits: for a provider whose circuit breaker is open, between retries, and under the
payment hold - never inside a transaction, and never past its own lease (another worker would take
the saga over)."""

from __future__ import annotations

import datetime as dt
import random

from app.domain.errors import ProviderUnavailable
from app.domain.saga import StepStatus
from app.infra.models.base import utcnow
from app.services import flags, saga_store
from app.services.saga_pauses import Pause, Steps
from app.services.saga_store import Saga, StepRow


def payment_held(saga: Saga, step: str) -> bool:
    """The payment_hold kill switch stops sagas right before they capture a payment.

    The process snapshot may lag a change by up to 5 s, so a "held" answer is confirmed from the
    database: sagas re-queued the moment the hold is lifted must not be held again by a stale view.
    """
    merchant_id = saga.order.merchant_id
    if step != "capture_payment" or not flags.is_enabled(flags.PAYMENT_HOLD, merchant_id):
        return False
    return flags.is_enabled_now(flags.PAYMENT_HOLD, merchant_id)


def within_lease(delay: float, lease_seconds: float) -> float:
    """A sleep cut to half the lease: the saga's next transaction renews it in time."""
    return min(delay, lease_seconds / 2)


def until_the_breaker_allows(error: ProviderUnavailable) -> float:
    """The breaker's cool-down plus jitter, so the waiting sagas do not all arrive at once."""
    return error.retry_after + random.uniform(0, 0.5)  # noqa: S311 - spreading, not cryptography


def may_wait(started_at: dt.datetime, circuit_wait_seconds: float) -> bool:
    """True while the step has waited less than circuit_wait_seconds since its first try."""
    if started_at.tzinfo is None:  # a row read back without its zone: stored as UTC
        started_at = started_at.replace(tzinfo=dt.UTC)
    return (utcnow() - started_at).total_seconds() < circuit_wait_seconds


def wait_for_provider(
    saga: Saga, step: StepRow, before: str, attempt: int, error: ProviderUnavailable,
    lease_seconds: float,
) -> Steps:
    """The provider's circuit is open, so the call was not made: no try is used up. The step goes
    back to pending and the saga sleeps until the breaker lets a call through, then runs it
    again."""
    saga_store.hold(saga)
    saga_store.add_attempt(
        saga, step=step.name, kind="action", attempt=attempt, outcome="deferred",
        error=str(error), started_at=utcnow(), duration_ms=0.0,
    )
    saga_store.set_step(
        saga, step, before, status=StepStatus.PENDING, attempts=attempt - 1, error=str(error)
    )
    yield Pause.COMMIT  # never sleep inside a transaction
    yield within_lease(until_the_breaker_allows(error), lease_seconds)
