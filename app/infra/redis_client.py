"""The shared Redis connection (queues, cache, rate limits, flag fan-out, locks)."""

from __future__ import annotations

import redis
from flask import current_app


def connect(url: str) -> redis.Redis:
    """A client for redis:// or unix:// URLs, with timeouts so a dead Redis fails fast."""
    return redis.Redis.from_url(
        url, socket_timeout=5, socket_connect_timeout=2, health_check_interval=30
    )


def get_redis() -> redis.Redis:
    """The app's Redis client, created in the factory."""
    return current_app.extensions["redis"]
