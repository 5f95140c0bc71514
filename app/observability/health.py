"""/healthz (the process is alive) and /readyz (its dependencies answer)."""

from __future__ import annotations

from flask import Blueprint, current_app, jsonify
from sqlalchemy import text

from app.extensions import db

health = Blueprint("health", __name__)


@health.get("/healthz")
def healthz():
    """Alive: touches no dependency, so a slow database never gets the process restarted."""
    return {"status": "ok"}


def _check_database() -> str | None:
    try:
        with db.engine.connect() as connection:
            connection.execute(text("SELECT 1"))
        return None
    except Exception as exc:  # noqa: BLE001 - any failure means "not ready"
        return type(exc).__name__


def _readiness_redis():
    """A client of its own with 1 s timeouts: /readyz must answer fast even if Redis hangs."""
    client = current_app.extensions.get("readiness_redis")
    if client is None:
        import redis

        client = redis.Redis.from_url(
            current_app.config["REDIS_URL"], socket_timeout=1, socket_connect_timeout=1,
            retry=None,  # redis-py would retry a timeout three times: /readyz answers in ~1 s
        )
        current_app.extensions["readiness_redis"] = client
    return client


def _check_redis() -> str | None:
    try:
        _readiness_redis().ping()
        return None
    except Exception as exc:  # noqa: BLE001
        return type(exc).__name__


@health.get("/readyz")
def readyz():
    """Ready: 200 when the database and Redis answer, else 503 naming what failed."""
    checks = {"database": _check_database(), "redis": _check_redis()}
    failed = sorted(name for name, error in checks.items() if error)
    body = {
        "status": "ok" if not failed else "unavailable",
        "checks": {name: ("ok" if error is None else "failed") for name, error in checks.items()},
    }
    if failed:
        body["failed"] = failed
    return jsonify(body), (503 if failed else 200)
