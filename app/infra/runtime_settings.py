"""Settings changed at run time without a restart, kept in Redis and read on every use.

Redis (not the process's config) so that every web worker, RQ worker and host sees a change at
once; a Redis flush puts every knob back to its safe default (no injected faults).
"""

from __future__ import annotations

import random
import time

import redis

from app.domain.chaos import DEFAULTS, KNOBS
from app.domain.errors import TransientError

CHAOS_KEY = "runtime:chaos"


class RuntimeSettings:
    def __init__(self, redis_client: redis.Redis, prefix: str = ""):
        self._redis = redis_client
        self._key = prefix + CHAOS_KEY

    def chaos(self) -> dict[str, float | int]:
        """Every chaos knob's current value (defaults for unset ones)."""
        return self.chaos_from(self._redis.hgetall(self._key))

    def read_chaos(self, pipe: redis.client.Pipeline) -> None:
        """Queue the read of the knobs on a caller's pipeline (its answer goes to chaos_from)."""
        pipe.hgetall(self._key)

    @staticmethod
    def chaos_from(stored: dict) -> dict[str, float | int]:
        values = dict(DEFAULTS)
        for raw_name, raw_value in stored.items():
            name = raw_name.decode() if isinstance(raw_name, bytes) else raw_name
            if name in KNOBS:
                values[name] = KNOBS[name].kind(float(raw_value))
        return values

    def set_chaos(self, values: dict[str, float | int]) -> None:
        if values:
            self._redis.hset(self._key, mapping={k: str(v) for k, v in values.items()})

    def reset_chaos(self) -> None:
        self._redis.delete(self._key)


class ChaosInjector:
    """Called by a provider simulator before each call: adds latency, fails at the set rate."""

    def __init__(self, settings: RuntimeSettings, provider: str, rng: random.Random | None = None):
        self._settings = settings
        self._provider = provider
        self._rng = rng or random.Random()  # noqa: S311 - fault injection, not security

    @property
    def settings(self) -> RuntimeSettings:
        return self._settings

    def __call__(self, knobs: dict[str, float | int] | None = None) -> None:
        """Apply the knobs (read now unless the caller just read them)."""
        if knobs is None:
            try:
                knobs = self._settings.chaos()
            except redis.RedisError:
                return  # no knobs readable: behave like a healthy provider
        latency = knobs[f"{self._provider}_latency_ms"]
        if latency > 0:
            time.sleep(latency / 1000)
        rate = knobs[f"{self._provider}_failure_rate"]
        if rate > 0 and self._rng.random() < rate:
            raise TransientError(f"{self._provider} provider: injected failure (chaos drill)")
