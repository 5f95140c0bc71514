"""Database snapshots: pg_dump/pg_restore for PostgreSQL, the online backup API for SQLite.

Also the per-table fingerprints (row count and a SHA-256 over every row in primary-key order) that a
backup's manifest records and a restore is verified against. Fingerprints are taken inside the same
snapshot as the dump, so they describe exactly the data in the backup.
"""

from __future__ import annotations

import datetime as dt
import decimal
import glob
import hashlib
import json
import os
import shutil
import sqlite3
import subprocess  # noqa: S404 - runs the PostgreSQL client tools with a fixed argv, no shell
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import MetaData, create_engine, select, text
from sqlalchemy.engine import Connection, make_url

Progress = Callable[[str], None]
# Written by Alembic; fingerprinted like any other table, but never counted as "data".
SCHEMA_TABLE = "alembic_version"


class SnapshotError(Exception):
    """A dump or restore could not be done; the message says why, without secrets."""


def backend_of(url: str) -> str:
    """`postgresql` or `sqlite`."""
    name = make_url(url).get_backend_name()
    if name not in ("postgresql", "sqlite"):
        raise SnapshotError(f"backups support PostgreSQL and SQLite, not {name}")
    return name


def sqlite_file(url: str) -> Path:
    """The database file a sqlite:/// URL names."""
    database = make_url(url).database
    if not database or database == ":memory:":
        raise SnapshotError("an in-memory SQLite database cannot be backed up")
    return Path(database)


def pg_tool(name: str, bin_dir: str = "") -> str:
    """Path of a PostgreSQL client tool: PG_BIN_DIR, then PATH, then the newest installed."""
    candidates = [str(Path(bin_dir) / name)] if bin_dir else []
    candidates += sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"), reverse=True)
    found = next((c for c in candidates if os.access(c, os.X_OK)), None)
    found = found if bin_dir else (shutil.which(name) or found)
    if not found:
        raise SnapshotError(f"{name} not found; install the PostgreSQL client or set PG_BIN_DIR")
    return found


def libpq_env(url: str, password: str = "") -> dict[str, str]:
    """The connection as PG* variables, so no password ever appears on a command line."""
    parsed = make_url(url)
    env = {k: v for k, v in os.environ.items() if not k.startswith("PG")}
    env.update(
        PGHOST=parsed.host or "localhost",
        PGPORT=str(parsed.port or 5432),
        PGUSER=parsed.username or "postgres",
        PGDATABASE=parsed.database or "postgres",
        PGCONNECT_TIMEOUT="10",
    )
    if parsed.password or password:
        env["PGPASSWORD"] = parsed.password or password
    return env


def _run_tool(argv: list[str], env: dict[str, str], progress: Progress, markers: tuple) -> None:
    """Run a client tool in verbose mode, echoing its per-table lines as progress."""
    process = subprocess.Popen(  # noqa: S603 - fixed argv from pg_tool(), no shell
        argv, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True
    )
    errors = []
    for line in process.stderr or ():
        line = line.rstrip()
        if any(marker in line for marker in markers):
            progress("  " + line.split(": ", 1)[-1])
        elif "error" in line.lower() or "fatal" in line.lower():
            errors.append(line)
    if process.wait() != 0:
        raise SnapshotError(f"{Path(argv[0]).name} failed: " + " | ".join(errors[-3:]))


def dump_postgresql(
    url: str, out: Path, snapshot_id: str, progress: Progress, bin_dir: str = "", password=""
) -> None:
    """pg_dump (custom format) of exactly the exported snapshot."""
    argv = [
        pg_tool("pg_dump", bin_dir), "--format=custom", "--no-owner", "--no-privileges",
        f"--snapshot={snapshot_id}", "--verbose", f"--file={out}",
    ]
    _run_tool(argv, libpq_env(url, password), progress, ("dumping contents of table",))


def restore_postgresql(
    url: str, dump: Path, progress: Progress, bin_dir: str = "", password=""
) -> None:
    """Replace the public schema with the dump's, all in one transaction.

    pg_restore first turns the dump into an SQL script (so a damaged dump fails before the
    database is touched); psql then runs "drop and recreate the schema" and that script inside a
    single transaction, so a restore that fails anywhere leaves the old data exactly as it was.
    """
    env = libpq_env(url, password)
    with tempfile.TemporaryDirectory(prefix="restore-") as scratch:
        script = Path(scratch) / "restore.sql"
        argv = [
            pg_tool("pg_restore", bin_dir), "--no-owner", "--no-privileges", "--exit-on-error",
            "--verbose", f"--file={script}", str(dump),
        ]
        _run_tool(argv, env, progress, ("processing data for table",))
        preamble = Path(scratch) / "preamble.sql"
        preamble.write_text("DROP SCHEMA IF EXISTS public CASCADE;\nCREATE SCHEMA public;\n")
        progress("  loading the restored schema and data in one transaction")
        argv = [
            pg_tool("psql", bin_dir), "--no-psqlrc", "--quiet", "--set=ON_ERROR_STOP=1",
            "--single-transaction", f"--file={preamble}", f"--file={script}",
        ]
        _run_tool(argv, env, progress, ())


def check_sqlite(path: Path) -> None:
    """Refuse an SQLite file that is not a sound database (before it replaces anything)."""
    try:
        connection = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
        try:
            verdict = connection.execute("PRAGMA quick_check").fetchone()
        finally:
            connection.close()
    except sqlite3.DatabaseError as exc:
        raise SnapshotError(f"the backup's database file is damaged ({exc})") from None
    if not verdict or verdict[0] != "ok":
        raise SnapshotError(f"the backup's database file is damaged ({verdict and verdict[0]})")


def copy_sqlite(source: Path, target: Path, progress: Progress) -> None:
    """Copy a live SQLite database page by page with the online backup API (consistent)."""
    if not source.exists():
        raise SnapshotError(f"no SQLite database at {source.name}")
    shown = set()

    def report(_status, remaining, total):
        done = int(100 * (total - remaining) / total) if total else 100
        if done // 25 not in shown:
            shown.add(done // 25)
            progress(f"  copied {done}% of {total} pages")

    src = sqlite3.connect(source, timeout=30)
    dst = sqlite3.connect(target, timeout=30)
    try:
        with dst:
            src.backup(dst, pages=512, progress=report)
    finally:
        dst.close()
        src.close()


@contextmanager
def postgresql_snapshot(url: str) -> Iterator[tuple[Connection, str]]:
    """A read-only REPEATABLE READ transaction and its exported snapshot id, held open."""
    engine = create_engine(url)
    try:
        with engine.connect() as connection:
            connection = connection.execution_options(
                isolation_level="REPEATABLE READ", postgresql_readonly=True
            )
            with connection.begin():
                snapshot_id = connection.execute(text("SELECT pg_export_snapshot()")).scalar_one()
                yield connection, snapshot_id
    finally:
        engine.dispose()


@contextmanager
def connect(url: str) -> Iterator[Connection]:
    """A plain connection (for fingerprints of a restored or copied database)."""
    engine = create_engine(url)
    try:
        with engine.connect() as connection:
            yield connection
    finally:
        engine.dispose()


def _canonical(value: Any) -> Any:
    if isinstance(value, dt.datetime | dt.date | dt.time):
        return value.isoformat()
    if isinstance(value, bytes | bytearray | memoryview):
        return bytes(value).hex()
    if isinstance(value, decimal.Decimal):
        return str(value)
    return value


def fingerprints(connection: Connection, progress: Progress | None = None) -> dict[str, dict]:
    """{table: {"rows": n, "sha256": hex}} over every table, rows in primary-key order."""
    metadata = MetaData()
    metadata.reflect(connection)
    result = {}
    for table in sorted(metadata.tables.values(), key=lambda t: t.name):
        order = list(table.primary_key.columns) or list(table.columns)
        digest = hashlib.sha256()
        rows = 0
        for row in connection.execute(select(table).order_by(*order)):
            digest.update(json.dumps([_canonical(v) for v in row], default=str).encode())
            digest.update(b"\n")
            rows += 1
        result[table.name] = {"rows": rows, "sha256": digest.hexdigest()}
        if progress:
            progress(f"  {table.name}: {rows} rows")
    return result


def schema_revision(tables: dict[str, dict], connection: Connection) -> str | None:
    """The Alembic revision the database is at (None before any migration)."""
    if SCHEMA_TABLE not in tables:
        return None
    query = f"SELECT version_num FROM {SCHEMA_TABLE}"  # noqa: S608 - a constant table name
    return connection.execute(text(query)).scalar()


def holds_data(connection: Connection) -> bool:
    """True when any table other than Alembic's has a row."""
    metadata = MetaData()
    metadata.reflect(connection)
    for table in metadata.tables.values():
        if table.name == SCHEMA_TABLE:
            continue
        if connection.execute(select(text("1")).select_from(table).limit(1)).first():
            return True
    return False


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()
