"""A circuit breaker per provider, with its state in Redis so every process shares it.

closed: calls go through; transient failures are counted in a sliding window. When the count
reaches the threshold the circuit opens: calls fail at once with CircuitOpen, saying when to come
back (the saga waits that long without using up a try) instead of piling onto a provider that is
down. After the cool-down one trial call is let through (half-open): success closes the circuit,
failure opens it again.

Only errors that say the provider is unwell count (timeouts, outages): a declined card, or a
"processing error, try again" about one customer's card, is the provider working correctly, and
must not get every other order refused fast.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

import redis

from app.domain.errors import ProviderUnavailable
from app.domain.retry import is_retryable

T = TypeVar("T")
PROVIDERS = ("payments", "shipping")


class CircuitOpen(ProviderUnavailable):
    """The provider's circuit is open: the call was not made (retry_after: when to come back)."""


# While another process makes the half-open trial call, come back after about one call's time.
TRIAL_RETRY_AFTER_SECONDS = 0.5


@dataclass(frozen=True)
class BreakerSettings:
    failure_threshold: int = 20
    window_seconds: float = 30.0
    cooldown_seconds: float = 10.0


class CircuitBreaker:
    def __init__(
        self,
        redis_client: redis.Redis,
        name: str,
        settings: Callable[[], BreakerSettings],
        prefix: str = "",
    ):
        self._redis = redis_client
        self.name = name
        self._settings = settings
        self._failures = f"{prefix}cb:{name}:failures"  # sorted set of failure times
        self._open_until = f"{prefix}cb:{name}:open_until"
        self._trial = f"{prefix}cb:{name}:trial"

    def state(self) -> str:
        """closed | open | half_open, as every process sees it right now."""
        return self.state_from(self._redis.get(self._open_until))

    def read_state(self, pipe: redis.client.Pipeline) -> None:
        """Queue the read of the state on a caller's pipeline (its answer goes to state_from)."""
        pipe.get(self._open_until)

    @staticmethod
    def state_from(open_until: bytes | None) -> str:
        if open_until is None:
            return "closed"
        return "open" if float(open_until) > time.time() else "half_open"

    def call(self, function: Callable[[], T], state: str | None = None) -> T:
        """Run `function` through the breaker; CircuitOpen when the circuit refuses the call.

        `state`: the state just read by the caller (read_state), saving a round trip.
        """
        state = self.state() if state is None else state
        trial_token = None
        if state == "open":
            raise CircuitOpen(
                f"{self.name} provider unavailable (circuit open)", self._seconds_until_trial()
            )
        if state == "half_open":
            trial_token = uuid.uuid4().hex
            settings = self._settings()
            # One trial call at a time across all processes.
            if not self._redis.set(
                self._trial, trial_token, nx=True, px=int(settings.cooldown_seconds * 1000)
            ):
                raise CircuitOpen(
                    f"{self.name} provider unavailable (circuit half-open)",
                    TRIAL_RETRY_AFTER_SECONDS,
                )
        try:
            result = function()
        except Exception as error:
            if is_retryable(error) and getattr(error, "provider_unhealthy", True):
                self._record_failure(trial=trial_token is not None)
            elif trial_token is not None:
                self._close()  # a business answer proves the provider is up
            raise
        if trial_token is not None:
            self._close()
        return result

    def _seconds_until_trial(self) -> float:
        """Until the cool-down ends (when the next call may be the trial)."""
        open_until = self._redis.get(self._open_until)
        if open_until is None:
            return 0.0
        return max(float(open_until) - time.time(), 0.0)

    def _record_failure(self, trial: bool) -> None:
        settings = self._settings()
        now = time.time()
        if trial:
            self._open(now, settings)
            return
        pipe = self._redis.pipeline()
        pipe.zadd(self._failures, {uuid.uuid4().hex: now})
        pipe.zremrangebyscore(self._failures, 0, now - settings.window_seconds)
        pipe.zcard(self._failures)
        pipe.expire(self._failures, int(settings.window_seconds) + 1)
        count = pipe.execute()[2]
        if count >= settings.failure_threshold:
            self._open(now, settings)

    def _open(self, now: float, settings: BreakerSettings) -> None:
        pipe = self._redis.pipeline()
        # Kept a while past the cool-down so the half-open state stays visible until a trial.
        pipe.set(self._open_until, now + settings.cooldown_seconds, ex=3600)
        pipe.delete(self._failures, self._trial)
        pipe.execute()

    def _close(self) -> None:
        self._redis.delete(self._open_until, self._failures, self._trial)

    def snapshot(self) -> dict[str, object]:
        """State plus recent failure count, for the dashboard and /metrics."""
        settings = self._settings()
        now = time.time()
        recent = self._redis.zcount(self._failures, now - settings.window_seconds, "+inf")
        open_until = self._redis.get(self._open_until)
        return {
            "provider": self.name,
            "state": self.state(),
            "recent_failures": int(recent),
            "failure_threshold": settings.failure_threshold,
            "open_until": float(open_until) if open_until else None,
        }


def breaker_settings(config) -> BreakerSettings:
    """The breaker settings from an app config mapping (read at call time)."""
    return BreakerSettings(
        failure_threshold=int(config["CIRCUIT_BREAKER_FAILURE_THRESHOLD"]),
        window_seconds=float(config["CIRCUIT_BREAKER_WINDOW_SECONDS"]),
        cooldown_seconds=float(config["CIRCUIT_BREAKER_COOLDOWN_SECONDS"]),
    )


def circuit_states(redis_client: redis.Redis, config) -> list[dict[str, object]]:
    """Every provider's breaker as the dashboard and metrics show it."""
    return [
        CircuitBreaker(
            redis_client, name, lambda: breaker_settings(config), config.get("QUEUE_PREFIX", "")
        ).snapshot()
        for name in PROVIDERS
    ]
