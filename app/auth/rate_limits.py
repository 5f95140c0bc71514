"""Rate limits: who is counted (the keys) and how, on flask-limiter's Redis storage and strategy.

Limits are read from the configuration on every request (never frozen into decorators at import),
and an operator may override them at run time without a restart through Redis (see
`set_runtime_limit`): every process and host picks the override up within `OVERRIDE_TTL_SECONDS`.

The hit is done in a request hook rather than with `@limiter.limit` so that every /api/v1 response,
including a 404 for an unknown route and a 405, carries X-RateLimit-* with the reset in seconds.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from dataclasses import dataclass
from functools import lru_cache, wraps

from flask import current_app, request
from limits import RateLimitItem, parse
from limits.storage import MemoryStorage

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
    except Exception:  # noqa: BLE001 - availability over exact limiting: counted in this process
        _warn_storage_unavailable()
        used, ttl = _memory_hit(window, item.get_expiry())
    reset = max(0, int(ttl))
    return RateState(item.amount, max(0, item.amount - used), reset, used <= item.amount)


# The API-key request's first round trip: read the key's cached principal (and any other cache
# entries the request will need), and count the request under the key when the principal is cached
# (a valid key) or under the client IP otherwise - exactly the identity api_caller_key() picks,
# except for a valid key missing from the cache, which `settle_prefetched_count` corrects.
# KEYS: principal entry, the key's window, the IP's window, other cache entries. ARGV: expiry.
_READ_AND_HIT = """
local principal = redis.call("GET", KEYS[1])
local window = KEYS[3]
if principal then window = KEYS[2] end
local current = redis.call("INCRBY", window, 1)
if tonumber(current) == 1 then
    redis.call("EXPIRE", window, ARGV[1])
end
local reply = {window, current, redis.call("TTL", window), principal}
for i = 4, #KEYS do
    reply[#reply + 1] = redis.call("GET", KEYS[i])
end
return reply
"""
_UNCOUNT = """
if redis.call("EXISTS", KEYS[1]) == 1 then
    return redis.call("DECRBY", KEYS[1], 1)
end
return 0
"""


@dataclass(frozen=True)
class PrefetchedCount:
    """A request counted before its caller was resolved (see _READ_AND_HIT)."""

    identity: str
    window: str
    state: RateState


def count_api_key_request(
    key_hash: str, cache_names: list[str]
) -> tuple[PrefetchedCount, list[bytes | None]] | None:
    """Count an X-API-Key request against RATELIMIT_API and read `cache_names` (the first the
    key's cached principal) in one Redis round trip: (the count, the raw values); None when
    limits are off or Redis is unavailable."""
    if not current_app.config.get("RATELIMIT_ENABLED", True):
        return None
    item = _parsed(configured_limit("RATELIMIT_API"))
    identities = (api_key_identity(key_hash), "ip:" + client_ip())
    windows = [limiter.storage.prefixed_key(item.key_for("api", i)) for i in identities]
    try:
        window, used, ttl, *values = _script("_read_and_hit", _READ_AND_HIT)(
            [cache_names[0], *windows, *cache_names[1:]], [item.get_expiry()]
        )
    except Exception:  # noqa: BLE001 - the limit hook counts it again, in memory if need be
        _warn_storage_unavailable()
        return None
    window, used = window.decode(), int(used)
    remaining = max(0, item.amount - used)
    state = RateState(item.amount, remaining, max(0, int(ttl)), used <= item.amount)
    return PrefetchedCount(identities[windows.index(window)], window, state), values


def settle_prefetched_count(prefetched: PrefetchedCount, principal) -> RateState | None:
    """The request's rate state for its resolved caller: the prefetched count when it was made
    under the right identity; else (a valid key that was not cached yet, an expired key) the
    request is counted again under the right one and the first count is taken back."""
    if prefetched.identity == api_caller_key(principal):
        return prefetched.state
    state = count_api_request(principal)
    try:
        _script("_uncount", _UNCOUNT)([prefetched.window], [])
    except Exception:  # noqa: BLE001 - at worst one request too many counted
        log.warning("could not take back a rate limit count", exc_info=True)
    return state


# While Redis is unreachable each process counts in its own memory (what flask-limiter's
# in-memory fallback does; the counting here is ours, so is the fallback): a limit still holds and
# every response still carries X-RateLimit-*, but per worker process - N workers let through up to
# N times the limit until Redis answers again, when counting goes back to the shared windows.
_memory: MemoryStorage | None = None
_memory_lock = threading.Lock()
_last_warning = [0.0]
WARNING_INTERVAL_SECONDS = 10.0


def _memory_hit(window: str, expiry: int) -> tuple[int, int]:
    global _memory
    with _memory_lock:
        if _memory is None:  # made on first need: its expiry timer thread, after any fork
            _memory = MemoryStorage()
    used = _memory.incr(window, expiry)
    return used, max(0, math.ceil(_memory.get_expiry(window) - time.time()))


def _warn_storage_unavailable() -> None:
    """One warning per WARNING_INTERVAL_SECONDS, not one per request of an outage."""
    now = time.monotonic()
    if now - _last_warning[0] >= WARNING_INTERVAL_SECONDS:
        _last_warning[0] = now
        log.warning("rate limit storage unavailable; counting in this process until it is back")


def _script(name: str, source: str):
    """A Lua script registered once on flask-limiter's storage connection."""
    storage = limiter.storage
    attribute = f"_orderprocessing{name}"
    script = getattr(storage, attribute, None)
    if script is None:
        script = storage.get_connection().register_script(source)
        setattr(storage, attribute, script)
    return script


def _hit(window: str, expiry: int) -> tuple[int, int]:
    """Count a hit in flask-limiter's Redis storage: (hits in the window, seconds to its reset)."""
    script = _script("_hit_and_ttl", _HIT_AND_TTL)
    used, ttl = script([limiter.storage.prefixed_key(window)], [expiry])
    return int(used), int(ttl)


def api_key_identity(key_hash: str) -> str:
    return "apikey:" + key_hash[:32]


def api_caller_key(principal) -> str:
    """API keys are counted by their hash, users by their id; anonymous callers by address."""
    if principal is not None and getattr(principal, "is_authenticated", False):
        key_hash = getattr(principal, "key_hash", "")
        return api_key_identity(key_hash) if key_hash else "principal:" + str(principal.id)
    return "ip:" + client_ip()


def count_api_request(principal) -> RateState | None:
    """Count a /api/v1 request against RATELIMIT_API for its caller."""
    return count(configured_limit("RATELIMIT_API"), "api", api_caller_key(principal))


def _username_key(username: str) -> str:
    """One count per account, however its name is typed (case, spaces)."""
    return username.strip().lower()[:150]


def count_login_attempt(username: str | None) -> RateState | None:
    """Count a password attempt per client IP and per username; the tighter state is returned."""
    limit = configured_limit("RATELIMIT_AUTH")
    states = [count(limit, "auth-ip", client_ip())]
    if username:
        states.append(count(limit, "auth-user", _username_key(username)))
    states = [s for s in states if s is not None]
    if not states:
        return None
    refused = [s for s in states if not s.allowed]
    if refused:
        return max(refused, key=lambda s: s.reset_seconds)
    return min(states, key=lambda s: s.remaining)


def take_back_username_attempt(username: str) -> None:
    """A sign-in that succeeded does not count against its username: the per-username limit is
    for guesses, and a shared account (or a shift signing in again and again) must not lock its
    own user out. The per-IP count stays: it limits everything from one address."""
    if not current_app.config.get("RATELIMIT_ENABLED", True):
        return
    item = _parsed(configured_limit("RATELIMIT_AUTH"))
    window = limiter.storage.prefixed_key(item.key_for("auth-user", _username_key(username)))
    try:
        _script("_uncount", _UNCOUNT)([window], [])
    except Exception:  # noqa: BLE001 - at worst the success stays counted
        log.warning("could not take back a sign-in count")


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
