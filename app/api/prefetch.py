"""Read the cache entries a request will need in one Redis round trip, before anything else."""

from __future__ import annotations

from flask import request

from app.api import api
from app.auth.api_keys import hash_key
from app.infra import cache_keys


@api.before_request
def prefetch_cache_entries():
    """The caller's API key principal, and the order an order read names (see cache_keys)."""
    keys = []
    api_key = request.headers.get("X-API-Key")
    if api_key:
        keys.append(cache_keys.api_key_key(hash_key(api_key.strip())))
    if request.endpoint == "api.get_order" and request.view_args:
        keys.append(cache_keys.order_key(request.view_args["order_id"]))
    if len(keys) > 1:  # a single entry costs the same trip read where it is needed
        cache_keys.prefetch(keys)
