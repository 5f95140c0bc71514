"""Retry policies: exponential backoff with jitter, declared once per saga step."""

from __future__ import annotations

import random
from dataclasses import dataclass


@dataclass(frozen=True)
class RetryPolicy:
    max_attempts: int
    base_delay: float = 0.2
    max_delay: float = 10.0

    def delay(self, attempt: int, rng: random.Random | None = None) -> float:
        """Seconds to wait after failed attempt number `attempt` (1-based): "equal jitter".

        Half the exponential delay is kept, half is random, so retries spread out but never hammer.
        """
        rng = rng or random.Random()  # noqa: S311 - jitter, not cryptography
        ceiling = min(self.max_delay, self.base_delay * (2 ** (attempt - 1)))
        return ceiling / 2 + rng.uniform(0, ceiling / 2)

    def exhausted(self, attempts: int) -> bool:
        """True once `attempts` tries were made and no more are allowed."""
        return attempts >= self.max_attempts
