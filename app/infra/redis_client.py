"""The shared Redis connection (queues, cache, rate limits, flag fan-out, locks)."""

from __future__ import annotations

import time

import redis
from flask import current_app

# Every Redis call of a request is sub-millisecond; a Redis that does not answer for this long is
# hung (frozen, swapping, a stalled network), and the request must fail fast (a 503, or the
# per-process fallbacks) instead of holding a web worker until gunicorn kills it. RQ raises the
# timeout itself for its workers' blocking dequeue.
SOCKET_TIMEOUT_SECONDS = 2.0
CONNECT_TIMEOUT_SECONDS = 2.0


# After a timeout this process does not ask Redis again for QUIET_SECONDS: a request makes
# several Redis calls (rate count, cache, enqueue, SLO counts), and each would wait its own 2 s.
# Every caller already copes with Redis being away (per-process limits, no cache, recovery
# queues the saga later), so during a hang a request pays one timeout, not one per call.
QUIET_SECONDS = 5.0
_hung_until = [0.0]


def _note_hung() -> None:
    _hung_until[0] = time.monotonic() + QUIET_SECONDS


class _FailFast:
    """Mixed into redis-py's connection classes (see QUIET_SECONDS)."""

    def connect(self):
        self._refuse_while_hung()
        try:
            return super().connect()
        except redis.TimeoutError:
            _note_hung()
            raise

    def send_packed_command(self, command, check_health=True):
        self._refuse_while_hung()
        return super().send_packed_command(command, check_health)

    def read_response(self, *args, **kwargs):
        try:
            return super().read_response(*args, **kwargs)
        except redis.TimeoutError:
            _note_hung()
            raise

    @staticmethod
    def _refuse_while_hung() -> None:
        if time.monotonic() < _hung_until[0]:
            raise redis.ConnectionError("Redis timed out moments ago; not asked again yet")


class FailFastConnection(_FailFast, redis.Connection):
    pass


class FailFastUnixConnection(_FailFast, redis.UnixDomainSocketConnection):
    pass


def client_options(url: str) -> dict:
    """Options for every Redis client the app makes (its own, flask-limiter's, flask-caching's).

    redis-py retries a timed-out command three times by default: against a hung Redis that is
    four timeouts per call. A refused or reset connection (a restart) is retried once; a timeout
    is not, and it makes the process leave Redis alone for QUIET_SECONDS.
    """
    from redis.backoff import NoBackoff
    from redis.retry import Retry

    unix = url.startswith(("unix://", "redis+unix://"))
    return {
        "socket_timeout": SOCKET_TIMEOUT_SECONDS,
        "socket_connect_timeout": CONNECT_TIMEOUT_SECONDS,
        "retry": Retry(NoBackoff(), 1, supported_errors=(redis.ConnectionError,)),
        "connection_class": FailFastUnixConnection if unix else FailFastConnection,
    }


def connect(url: str) -> redis.Redis:
    """A client for redis:// or unix:// URLs, with timeouts so a dead or hung Redis fails fast."""
    return redis.Redis.from_url(url, health_check_interval=30, **client_options(url))


def get_redis() -> redis.Redis:
    """The app's Redis client, created in the factory."""
    return current_app.extensions["redis"]
