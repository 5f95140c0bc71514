"""The audit Actor for the current request (dashboard or API) or command line."""

from __future__ import annotations

import getpass

from flask import g, has_request_context, request
from flask_login import current_user

from app.observability.client_ip import client_ip
from app.services.audit import Actor


def request_actor(source: str) -> Actor:
    """The logged-in user or API key of this request, for the audit log."""
    if has_request_context() and current_user.is_authenticated:
        return Actor(
            name=current_user.username,
            role=current_user.role,
            source=source,
            request_id=g.get("request_id"),
            ip=client_ip() if request else None,
        )
    return Actor(name="anonymous", role=None, source=source)


def cli_actor() -> Actor:
    """The operating-system user running a `flask ...` command."""
    try:
        name = getpass.getuser()
    except Exception:  # noqa: BLE001 - no passwd entry in some containers
        name = "unknown"
    return Actor(name=f"cli:{name}", role=None, source="cli")
