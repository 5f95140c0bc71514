"""Engine settings per database, so both SQLite and PostgreSQL behave well under concurrency."""

from __future__ import annotations

import time
from typing import Any

from sqlalchemy import event, exc
from sqlalchemy.engine import Engine

# A pooled connection idle at least this long is pinged before it is handed out.
IDLE_PING_SECONDS = 1.0


def engine_options(database_url: str, pool_size: int) -> dict[str, Any]:
    """SQLALCHEMY_ENGINE_OPTIONS for the URL."""
    if database_url.startswith("sqlite"):
        # One file, many processes: waits on locks instead of failing at once.
        return {"connect_args": {"timeout": 30, "check_same_thread": False}}
    return {
        "pool_size": pool_size,
        "max_overflow": pool_size,
        # No pool_pre_ping: that is a round trip on every checkout (every request); see
        # ping_idle_connections, which pings only connections that sat idle.
        "pool_recycle": 1800,
        "connect_args": {"connect_timeout": 3},
    }


def ping_idle_connections(engine: Engine) -> None:
    """pool_pre_ping for connections that sat idle: a database restart must not hand out dead ones.

    A busy connection (used within IDLE_PING_SECONDS) is trusted: if the database died under it,
    one statement fails, SQLAlchemy's disconnect detection invalidates the whole pool, and the next
    checkout connects afresh - the same recovery pre-ping gives, without its round trip per request.
    """
    if engine.dialect.name != "postgresql":
        return

    @event.listens_for(engine, "checkin")
    def _checked_in(_dbapi_connection, record):
        record.info["idle_since"] = time.monotonic()

    @event.listens_for(engine, "checkout")
    def _checked_out(dbapi_connection, record, _proxy):
        idle_since = record.info.get("idle_since")
        if idle_since is not None and time.monotonic() - idle_since < IDLE_PING_SECONDS:
            return
        try:
            engine.dialect.do_ping(dbapi_connection)
        except Exception as error:  # noqa: BLE001 - any failure means: use another connection
            raise exc.DisconnectionError() from error


def read_one_autocommit(engine: Engine, sql: str, params: tuple) -> tuple | None:
    """One row of one query, through the driver on a pooled connection in autocommit.

    For the hottest single-row lookups on PostgreSQL (the order version behind every order read):
    no BEGIN/ROLLBACK round trips and none of SQLAlchemy's statement machinery, which cost more
    than the query. `sql` is in the driver's paramstyle. Driver errors come out as SQLAlchemy's
    (so an outage is a 503 like anywhere else), and a connection that failed is discarded.
    """
    dbapi_error = engine.dialect.loaded_dbapi.Error
    raw = engine.raw_connection()
    try:
        driver = raw.driver_connection
        driver.autocommit = True
        try:
            return driver.execute(sql, params).fetchone()
        finally:
            driver.autocommit = False
    except dbapi_error as error:
        raw.invalidate(error)
        raise exc.DBAPIError.instance(sql, params, error, dbapi_error) from error
    finally:
        raw.close()


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
