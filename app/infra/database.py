"""Engine settings per database, so both SQLite and PostgreSQL behave well under concurrency."""

from __future__ import annotations

import contextlib
import os
import threading
import time
import weakref
from collections.abc import Mapping, Sequence
from typing import Any

from sqlalchemy import event, exc
from sqlalchemy.engine import Engine, make_url

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


def password_from_config(engine: Engine, config, url_setting: str = "DATABASE_URL") -> None:
    """New connections log in with config["DATABASE_PASSWORD"] as it is when they connect.

    A rotated database password (re-read from Vault by the process's SecretRefresher) then takes
    effect without a restart: open connections keep their session (PostgreSQL does not end them
    when a password changes) and every new one uses the new password. A password written in the
    configured URL itself (`url_setting`) stays as it is.
    """
    if engine.dialect.name != "postgresql" or make_url(config[url_setting]).password:
        return

    @event.listens_for(engine, "do_connect")
    def _current_password(_dialect, _record, _cargs, cparams):
        if config.get("DATABASE_PASSWORD"):
            cparams["password"] = config["DATABASE_PASSWORD"]


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


class _ReaderConnection(threading.local):
    """This thread's own autocommit connection for `one_row_autocommit`."""

    driver: Any = None
    pid: int | None = None
    last_used: float = 0.0


class _Reader:
    """An engine's reader connections: one per thread, all closed when the engine is disposed."""

    def __init__(self, engine: Engine):
        self.local = _ReaderConnection()
        self.drivers: weakref.WeakSet[Any] = weakref.WeakSet()
        event.listen(engine, "engine_disposed", self.close_all)

    def close_all(self, _engine=None) -> None:
        for driver in list(self.drivers):
            with contextlib.suppress(Exception):
                driver.close()


_readers: weakref.WeakKeyDictionary[Engine, _Reader] = weakref.WeakKeyDictionary()
_readers_lock = threading.Lock()
# Connections inherited across a fork belong to the parent: never used, never finalized here.
_inherited: list[Any] = []


def _reader_for(engine: Engine) -> _Reader:
    reader = _readers.get(engine)
    if reader is None:
        with _readers_lock:
            reader = _readers.get(engine) or _readers.setdefault(engine, _Reader(engine))
    return reader


def _reader_connection(engine: Engine, reader: _Reader):
    local = reader.local
    if local.driver is not None and local.pid == os.getpid() and not local.driver.closed:
        return local.driver
    if local.driver is not None and local.pid != os.getpid():
        _inherited.append(local.driver)
    driver_error = engine.dialect.loaded_dbapi.Error
    try:
        fairy = engine.raw_connection()  # the engine's connect arguments and events
    except driver_error as error:
        # Unlike engine.connect(), a raw pool checkout hands the driver's own error out (a refused
        # connect): wrapped as SQLAlchemy's, so a database outage is a 503 here too, not a 500.
        raise exc.DBAPIError.instance(None, None, error, driver_error) from error
    driver = fairy.driver_connection
    fairy.detach()  # ours from now on: the pool neither counts nor resets it
    driver.autocommit = True
    reader.drivers.add(driver)
    local.driver, local.pid, local.last_used = driver, os.getpid(), time.monotonic()
    return driver


def one_row_autocommit(
    engine: Engine, sql: str, params: Sequence[Any] | Mapping[str, Any]
) -> tuple | None:
    """One statement, through the driver, on this thread's own autocommit connection; its first
    row (None if it returns none).

    For the hottest single-row statements on PostgreSQL (the order version behind every order
    read, the provider simulators' ledger inserts): no BEGIN/COMMIT round trips, none of
    SQLAlchemy's statement machinery and no pool checkout and return, which together cost more
    than the statement. `sql` is in the driver's paramstyle; a write must be safe to repeat (the
    retry below), like an INSERT ... ON CONFLICT DO NOTHING.
    Driver errors come out as SQLAlchemy's (so an outage is a 503 like anywhere else) and a
    connection that failed is dropped; `engine.dispose()` closes them all. Like the pool
    (ping_idle_connections), a connection idle for IDLE_PING_SECONDS gets one fresh retry when it
    turns out dead (a database restart), so only a connection used within the last second can
    fail one read.
    """
    reader = _reader_for(engine)
    local = reader.local
    dbapi = engine.dialect.loaded_dbapi
    for attempt in (1, 2):
        driver = _reader_connection(engine, reader)
        idle = time.monotonic() - local.last_used
        try:
            row = driver.execute(sql, params).fetchone()
        except dbapi.Error as error:
            local.driver = None
            with contextlib.suppress(Exception):
                driver.close()
            if attempt == 1 and idle >= IDLE_PING_SECONDS and isinstance(
                error, dbapi.OperationalError
            ):
                continue
            raise exc.DBAPIError.instance(sql, params, error, dbapi.Error) from error
        local.last_used = time.monotonic()
        return row
    raise AssertionError("unreachable")  # pragma: no cover


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
