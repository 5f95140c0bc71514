"""The client's address, as rate limits and audit records see it."""

from flask import request


def client_ip() -> str:
    """The peer address; behind TRUSTED_PROXY_COUNT proxies, ProxyFix (app/factory.py) has
    already replaced it with the client address from X-Forwarded-For (with 0, the header is
    ignored)."""
    return request.remote_addr or "unknown"
