"""Retry policies: exponential backoff with jitter, declared once per saga step.

Which errors are worth another try is decided here too, in one place: an error class says so with
its `retryable` attribute (TransientError: yes; StepFailure and every other DomainError: never).
"""

from __future__ import annotations

import random
from dataclasses import dataclass


def is_retryable(error: BaseException) -> bool:
    """True for errors that may pass on their own (a provider blip); False for final answers.

    A declined card, a refused shipment or missing stock are answers, not accidents: retrying them
    would only repeat the answer (or, worse, charge a customer who was already told no).
    """
    return bool(getattr(error, "retryable", False))


@dataclass(frozen=True)
class RetryPolicy:
    max_attempts: int
    base_delay: float = 0.2
    max_delay: float = 10.0

    def __post_init__(self) -> None:
        if self.max_attempts < 1 or self.base_delay < 0 or self.max_delay < self.base_delay:
            raise ValueError(f"inconsistent retry policy: {self}")

    def delay(self, attempt: int, rng: random.Random | None = None) -> float:
        """Seconds to wait after failed attempt number `attempt` (1-based): "equal jitter".

        Half the exponential delay is kept, half is random, so retries spread out but never hammer.
        """
        rng = rng or random.Random()  # noqa: S311 - jitter, not cryptography
        ceiling = min(self.max_delay, self.base_delay * (2 ** (max(attempt, 1) - 1)))
        return ceiling / 2 + rng.uniform(0, ceiling / 2)

    def exhausted(self, attempts: int) -> bool:
        """True once `attempts` tries were made and no more are allowed."""
        return attempts >= self.max_attempts

    def should_retry(self, error: BaseException, attempts: int) -> bool:
        """Retry only a retryable error, and only while attempts are left."""
        return is_retryable(error) and not self.exhausted(attempts)
