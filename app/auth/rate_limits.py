"""Rate limits: who is counted (the keys) and how, on flask-limiter's Redis storage and strategy.

Limits are read from the configuration on every request (never frozen into decorators at import),
and an operator may override them at run time without a restart through Redis (see
`set_runtime_limit`): every process and host picks the override up within `OVERRIDE_TTL_SECONDS`.

The hit is done in a request hook rather than with `@limiter.limit` so that every /api/v1 response,
including a 404 for an unknown route and a 405, carries X-RateLimit-* with the reset in seconds.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from functools import lru_cache, wraps

from flask import current_app, request
from limits import RateLimitItem, parse

from app.extensions import limiter
from app.observability.client_ip import client_ip

log = logging.getLogger(__name__)

# limits' fixed-window hit (its incr_expire.lua) that also answers the window's TTL: the count and
# the reset in one Redis round trip instead of two, on the same keys flask-limiter uses.
_HIT_AND_TTL = """
local current = redis.call("incrby", KEYS[1], 1)
if tonumber(current) == 1 then
    redis.call("expire", KEYS[1], ARGV[1])
end
return {current, redis.call("ttl", KEYS[1])}
"""

# Names of the configurable limits (config.py): the only ones that may be overridden at run time.
LIMIT_NAMES = ("RATELIMIT_API", "RATELIMIT_AUTH")
OVERRIDE_TTL_SECONDS = 5.0
_overrides: dict[str, tuple[float, str | None]] = {}


@dataclass(frozen=True)
class RateState:
    """One limit after counting this request against it."""

    limit: int
    remaining: int
    reset_seconds: int
    allowed: bool

    def headers(self) -> dict[str, str]:
        """The X-RateLimit-* headers of the contract (reset in seconds from now)."""
        headers = {
            "X-RateLimit-Limit": str(self.limit),
            "X-RateLimit-Remaining": str(self.remaining),
            "X-RateLimit-Reset": str(self.reset_seconds),
        }
        if not self.allowed:
            headers["Retry-After"] = str(max(1, self.reset_seconds))
        return headers


@lru_cache(maxsize=64)
def _parsed(text: str) -> RateLimitItem:
    return parse(text)


def _override_key(name: str) -> str:
    return current_app.config["QUEUE_PREFIX"] + "ratelimit:override:" + name


def set_runtime_limit(name: str, value: str | None) -> None:
    """Override a configured limit in every process (None removes the override)."""
    if name not in LIMIT_NAMES:
        raise ValueError(f"{name} is not a rate limit setting; use one of {LIMIT_NAMES}")
    redis = current_app.extensions["redis"]
    if value is None:
        redis.delete(_override_key(name))
    else:
        _parsed(value)  # refuse a malformed limit before any process reads it
        redis.set(_override_key(name), value)
    _overrides.pop(_override_key(name), None)


def configured_limit(name: str) -> str:
    """The limit in force: a run-time override from Redis if set, else the configuration."""
    now = time.monotonic()
    redis_key = _override_key(name)
    cached = _overrides.get(redis_key)
    if cached is None or cached[0] <= now:
        try:
            raw = current_app.extensions["redis"].get(redis_key)
            value = raw.decode() if raw else None
        except Exception:  # noqa: BLE001 - Redis trouble must not take the API down
            value = cached[1] if cached else None
        cached = _overrides[redis_key] = (now + OVERRIDE_TTL_SECONDS, value)
    return cached[1] or current_app.config[name]


def count(limit_text: str, scope: str, key: str) -> RateState | None:
    """Count one request against `limit_text` for `scope:key`; None when limits are off or down."""
    if not current_app.config.get("RATELIMIT_ENABLED", True):
        return None
    item = _parsed(limit_text)
    window = item.key_for(scope, key)
    try:
        used, ttl = _hit(window, item.get_expiry())
    except Exception:  # noqa: BLE001 - RATELIMIT_SWALLOW_ERRORS: availability over limiting
        log.warning("rate limit storage unavailable; request not limited", exc_info=True)
        return None
    reset = max(0, int(ttl))
    return RateState(item.amount, max(0, item.amount - used), reset, used <= item.amount)


def _hit(window: str, expiry: int) -> tuple[int, int]:
    """Count a hit in flask-limiter's Redis storage: (hits in the window, seconds to its reset)."""
    storage = limiter.storage
    script = getattr(storage, "_hit_and_ttl_script", None)
    if script is None:
        script = storage.get_connection().register_script(_HIT_AND_TTL)
        storage._hit_and_ttl_script = script
    used, ttl = script([storage.prefixed_key(window)], [expiry])
    return int(used), int(ttl)


def api_caller_key(principal) -> str:
    """API keys and users are counted by their id; anonymous callers by their address."""
    if principal is not None and getattr(principal, "is_authenticated", False):
        return "principal:" + str(principal.id)
    return "ip:" + client_ip()


def count_api_request(principal) -> RateState | None:
    """Count a /api/v1 request against RATELIMIT_API for its caller."""
    return count(configured_limit("RATELIMIT_API"), "api", api_caller_key(principal))


def count_login_attempt(username: str | None) -> RateState | None:
    """Count a password attempt per client IP and per username; the tighter state is returned."""
    limit = configured_limit("RATELIMIT_AUTH")
    states = [count(limit, "auth-ip", client_ip())]
    if username:
        states.append(count(limit, "auth-user", username.strip().lower()[:150]))
    states = [s for s in states if s is not None]
    if not states:
        return None
    refused = [s for s in states if not s.allowed]
    if refused:
        return max(refused, key=lambda s: s.reset_seconds)
    return min(states, key=lambda s: s.remaining)


def limit_login_attempts(on_breach):
    """Decorate a login view: a POST over RATELIMIT_AUTH answers `on_breach(state)` instead."""

    def decorator(view):
        @wraps(view)
        def wrapped(*args, **kwargs):
            if request.method == "POST":
                state = count_login_attempt(request.form.get("username"))
                if state is not None and not state.allowed:
                    return on_breach(state)
            return view(*args, **kwargs)

        return wrapped

    return decorator
