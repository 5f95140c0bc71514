"""Engine settings per database, so both SQLite and PostgreSQL behave well under concurrency."""

from __future__ import annotations

from typing import Any

from sqlalchemy import event
from sqlalchemy.engine import Engine


def engine_options(database_url: str, pool_size: int) -> dict[str, Any]:
    """SQLALCHEMY_ENGINE_OPTIONS for the URL."""
    if database_url.startswith("sqlite"):
        # One file, many processes: waits on locks instead of failing at once.
        return {"connect_args": {"timeout": 30, "check_same_thread": False}}
    return {
        "pool_size": pool_size,
        "max_overflow": pool_size,
        "pool_pre_ping": True,  # a database restart must not hand out dead connections
        "pool_recycle": 1800,
        "connect_args": {"connect_timeout": 3},
    }


def configure_sqlite(engine: Engine) -> None:
    """WAL, a busy timeout and write locks taken at BEGIN.

    pysqlite's deferred transactions upgrade read locks to write locks mid-transaction, which fails
    with "database is locked" regardless of the busy timeout when two writers meet; BEGIN IMMEDIATE
    makes writers queue on the busy timeout instead.
    """
    if engine.dialect.name != "sqlite":
        return

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection, _record):
        dbapi_connection.isolation_level = None  # we emit BEGIN ourselves
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA busy_timeout=30000")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(connection):
        connection.exec_driver_sql("BEGIN IMMEDIATE")
