"""The first round trip of an API request: what it will read from the cache, and its rate limit.

An X-API-Key request reads the key's cached principal (and, for an order read, the cached order)
and is counted against RATELIMIT_API in one Redis round trip (rate_limits.count_api_key_request);
the rate limit hook then settles that count once the caller is resolved. Other requests (and
any request while limits are off or Redis is away) read their cache entries where they need them,
and are counted by the rate limit hook.
"""

from __future__ import annotations

from flask import g, request

from app.api import api
from app.auth import rate_limits
from app.auth.api_keys import hash_key
from app.auth.setup import identify_api_caller
from app.infra import cache_keys


@api.before_request
def prefetch_cache_entries():
    key_hash = _prefetch()
    identify_api_caller(key_hash)  # reads the key's cached principal this round trip brought


def _prefetch() -> str | None:
    """The presented API key's hash, after its cache entries were read and the request counted."""
    api_key = request.headers.get("X-API-Key")
    if not api_key:
        return None
    key_hash = hash_key(api_key.strip())
    keys = [cache_keys.api_key_key(key_hash)]
    if request.endpoint == "api.get_order" and request.view_args:
        keys.append(cache_keys.order_key(request.view_args["order_id"]))
    counted = rate_limits.count_api_key_request(key_hash, cache_keys.redis_names(keys))
    if counted is not None:
        g.prefetched_rate, raw_values = counted
        cache_keys.remember_prefetched(keys, raw_values)
    return key_hash
