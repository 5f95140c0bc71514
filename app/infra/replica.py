"""Read-replica routing: read-only requests read from DATABASE_REPLICA_URL, the rest from the
primary.

A request is routed to the replica only when it is a GET/HEAD of a list endpoint of the API or a
dashboard page (`replica_eligible`), and even then only plain SELECTs go there: a flush, an
UPDATE or anything else inside such a request still goes to the primary. Authentication is resolved
on the primary before the switch, so a key or user created a moment ago is never refused because
the replica lags. Single-resource reads (`GET /orders/{id}`, which merchants poll right after
placing an order) stay on the primary: read-your-writes where it matters. When the replica cannot
be reached, the request that found out fails and the next REPLICA_RETRY_SECONDS of reads go to
the primary.
"""

from __future__ import annotations

import logging
import time
from contextvars import ContextVar
from typing import Any

from flask_sqlalchemy.session import Session
from sqlalchemy import event
from sqlalchemy.engine import Engine
from sqlalchemy.sql import CompoundSelect, Select

log = logging.getLogger(__name__)
REPLICA_BIND = "replica"
# After a connection failure the replica is skipped (reads go to the primary) for this long.
REPLICA_RETRY_SECONDS = 30.0
_reading_from_replica: ContextVar[bool] = ContextVar("reading_from_replica", default=False)
_replica_down_until: dict[int, float] = {}


def watch_replica(engine: Engine) -> None:
    """Mark the replica unavailable for REPLICA_RETRY_SECONDS when connecting to it fails."""

    @event.listens_for(engine, "handle_error")
    def _on_error(context):
        if context.is_disconnect or context.connection is None:
            _replica_down_until[id(engine)] = time.monotonic() + REPLICA_RETRY_SECONDS
            log.warning("read replica unavailable; reading from the primary",
                        extra={"retry_in_seconds": REPLICA_RETRY_SECONDS})


def replica_available(engine: Engine) -> bool:
    return time.monotonic() >= _replica_down_until.get(id(engine), 0.0)


class RoutingSession(Session):
    """Flask-SQLAlchemy's session, sending SELECTs to the replica while a read-only request runs."""

    def get_bind(self, mapper=None, clause=None, bind=None, **kwargs: Any):
        if (
            bind is None
            and _reading_from_replica.get()
            and not self._flushing
            and isinstance(clause, Select | CompoundSelect)
        ):
            replica = self._db.engines.get(REPLICA_BIND)
            if replica is not None and replica_available(replica):
                return replica
        return super().get_bind(mapper=mapper, clause=clause, bind=bind, **kwargs)


def replica_eligible(method: str, blueprint: str | None, endpoint: str | None, rule: str) -> bool:
    """True for read-only pages: dashboard GETs (not the login form) and API list endpoints."""
    if method not in ("GET", "HEAD") or endpoint is None:
        return False
    if blueprint == "web":
        return endpoint != "web.login"
    if blueprint == "api":
        return "<" not in rule and not rule.endswith(("/openapi.json", "/docs"))
    return False


def start_replica_reads() -> object:
    """Route this request's SELECTs to the replica; returns the token to stop with."""
    return _reading_from_replica.set(True)


def stop_replica_reads(token: object) -> None:
    _reading_from_replica.reset(token)  # type: ignore[arg-type]


def replica_binds(replica_url: str, options: dict[str, Any]) -> dict[str, Any]:
    """SQLALCHEMY_BINDS entry for the replica (none when no replica is configured)."""
    return {REPLICA_BIND: {"url": replica_url, **options}} if replica_url else {}
