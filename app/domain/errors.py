"""Domain errors. Each says whether retrying could help, so callers never guess."""

from __future__ import annotations

from dataclasses import dataclass


class DomainError(Exception):
    """Base of every error the domain raises on purpose."""

    retryable = False


@dataclass
class FieldError:
    field: str
    message: str


class ValidationFailed(DomainError):
    """Input broke a business rule; `errors` names each field (like `items[0].quantity`)."""

    def __init__(self, errors: list[FieldError]):
        super().__init__("; ".join(f"{e.field}: {e.message}" for e in errors))
        self.errors = errors


class NotFound(DomainError):
    """The resource does not exist, or the caller may not know that it does."""

    def __init__(self, what: str = "resource"):
        super().__init__(f"{what} not found")
        self.what = what


class Conflict(DomainError):
    """The request clashes with the resource's current state (duplicate, already final, ...)."""


class InvalidTransition(Conflict):
    """A state machine was asked for a move it does not allow."""


class StepFailure(DomainError):
    """A saga step failed for good; `reason` becomes the order's failure_reason."""

    def __init__(self, reason: str, message: str = ""):
        super().__init__(message or reason)
        self.reason = reason
        self.message = message or reason


class TransientError(DomainError):
    """A provider or dependency failed in a way that may pass: the step is retried with backoff.

    By default it also says the provider itself is unwell (a timeout, an outage), so the
    provider's circuit breaker counts it.
    """

    retryable = True
    # False for an answer about this one request ("processing error, try again"): the provider is
    # up, and other orders must not be refused fast because of one customer's card.
    provider_unhealthy = True


class RetryRequested(TransientError):
    """The provider answered, asking to try this request again later: not a sign of an outage."""

    provider_unhealthy = False


class ProviderUnavailable(TransientError):
    """The call was not made: the provider is known to be down (its circuit is open).

    Not an attempt: the saga waits `retry_after` seconds (until the breaker lets calls through)
    without using up the step's tries, for at most the configured wait.
    """

    provider_unhealthy = False  # nothing happened to count

    def __init__(self, message: str, retry_after: float):
        super().__init__(message)
        self.retry_after = max(retry_after, 0.0)


class OutOfStock(StepFailure):
    def __init__(self, message: str = "not enough stock"):
        super().__init__("out_of_stock", message)


class PaymentDeclined(StepFailure):
    def __init__(self, message: str = "payment declined"):
        super().__init__("payment_declined", message)


class ShipmentRefused(StepFailure):
    def __init__(self, message: str = "shipment refused"):
        super().__init__("shipment_failed", message)


class FraudSuspected(StepFailure):
    def __init__(self, message: str = "fraud suspected"):
        super().__init__("fraud_suspected", message)
