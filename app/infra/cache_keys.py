"""Every cache key and its invalidation, in one place: one `invalidate_*` per cached concept.

Orders are cached version-keyed: an entry holds the order's `version` next to its JSON, and a read
serves it only when the version still matches the row's. Every writer (API, dashboard, saga
worker) already bumps `orders.version` in the same transaction as the change, so a change is
visible at once without the worker knowing about the cache. `invalidate_order` exists for writers
that change an order without bumping the version, and to drop an entry early.

API keys: the principal behind a presented key is cached briefly; revoking a key invalidates it
at once, so a revoked key is refused from the next request on, in every process.
"""

from __future__ import annotations

from typing import Any

from flask import g, has_request_context

from app.extensions import cache

# Bounds how long a key changed without `invalidate_api_key` (a direct database edit) still works.
API_KEY_TTL_SECONDS = 30


def order_key(order_id: str) -> str:
    return f"order:{order_id}"


def api_key_key(key_hash: str) -> str:
    return f"apikey:{key_hash}"


def cached_order(order_id: str, version: int) -> str | None:
    """The cached JSON text of the order at `version`, or None (missing, stale or cache down)."""
    entry = _get(order_key(order_id))
    if isinstance(entry, dict) and entry.get("version") == version:
        return entry.get("json")  # None for an entry of an older release (it held a dict)
    return None


def store_order(order_id: str, version: int, json_text: str) -> None:
    """Cache the order's response body as text: a hit is sent as it is, never re-encoded."""
    _set(order_key(order_id), {"version": version, "json": json_text})


def invalidate_order(order_id: str) -> None:
    """Drop the order's cached JSON (reads rebuild it from the database)."""
    _delete(order_key(order_id))


def cached_api_key(key_hash: str) -> dict[str, Any] | None:
    entry = _get(api_key_key(key_hash))
    return entry if isinstance(entry, dict) else None


def store_api_key(key_hash: str, principal: dict[str, Any]) -> None:
    _set(api_key_key(key_hash), principal, timeout=API_KEY_TTL_SECONDS)


def invalidate_api_key(key_hash: str) -> None:
    """Forget a key's cached principal (on revocation or expiry change)."""
    _delete(api_key_key(key_hash))


def redis_names(keys: list[str]) -> list[str]:
    """The Redis keys behind cache entries (for reads done inside another round trip)."""
    prefix = cache.cache._get_prefix()  # noqa: SLF001 - cachelib's own naming of its keys
    return [prefix + key for key in keys]


def remember_prefetched(keys: list[str], raw_values: list[bytes | None]) -> None:
    """Values read raw from `redis_names(keys)`, decoded and kept for this request (see _get)."""
    serializer = cache.cache.serializer
    g.cache_prefetched = {
        key: serializer.loads(raw) for key, raw in zip(keys, raw_values, strict=True)
    }


# A cache outage degrades to database reads; it never fails a request.
def _get(key: str) -> Any:
    prefetched = g.get("cache_prefetched") if has_request_context() else None
    if prefetched is not None and key in prefetched:
        return prefetched.pop(key)  # once: a later read sees any write made meanwhile
    try:
        return cache.get(key)
    except Exception:  # noqa: BLE001
        return None


def _set(key: str, value: Any, timeout: int | None = None) -> None:
    try:
        cache.set(key, value, timeout=timeout)
    except Exception:  # noqa: BLE001, S110 - best effort: the database stays the truth
        pass


def _delete(key: str) -> None:
    try:
        cache.delete(key)
    except Exception:  # noqa: BLE001, S110
        pass
