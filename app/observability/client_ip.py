"""The client's address, as rate limits and audit records see it."""

from flask import request


def client_ip() -> str:
    """The peer address; behind a trusted proxy, ProxyFix (see factory) has already rewritten it."""
    return request.remote_addr or "unknown"
