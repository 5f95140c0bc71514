"""Backups and restores of all data, verified against a manifest.

A backup is a directory: the data file (`data.pgdump` from pg_dump, or `data.sqlite3` from SQLite's
online backup API) and `manifest.json` (schema revision, per-table row counts and SHA-256 checksums
taken inside the same snapshot, the data file's checksum). The manifest is written last: a directory
without one is an unfinished backup and is never restored from.
"""

from __future__ import annotations

import datetime as dt
import importlib
import json
import logging
import shutil
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from flask import current_app

from app.extensions import db
from app.infra import snapshots
from app.infra.snapshots import Progress, SnapshotError
from app.services import audit
from app.services.audit import SYSTEM, Actor
from config import database_connect_url

log = logging.getLogger(__name__)
MANIFEST = "manifest.json"
DATA_FILES = {"postgresql": "data.pgdump", "sqlite": "data.sqlite3"}
FORMAT_VERSION = 1
# Held in Redis while a scheduled backup runs, so a second scheduler never starts another.
BACKUP_LOCK = "backup:running"


class BackupError(Exception):
    """A backup or restore was refused or failed; the message tells the operator what to do."""


@dataclass
class RestoreReport:
    """What a restore did and whether the result matches the backup."""

    path: Path
    schema_revision: str | None
    tables: int
    rows: int
    seconds: float
    mismatches: list[str] = field(default_factory=list)
    integrity: str = "not run"

    @property
    def ok(self) -> bool:
        return not self.mismatches


def _quiet(_line: str) -> None:
    return None


def _settings() -> dict[str, Any]:
    config = current_app.config
    return {"bin_dir": config["PG_BIN_DIR"], "password": config["DATABASE_PASSWORD"]}


def backup_dir() -> Path:
    """Where scheduled backups go (BACKUP_DIR, default instance/backups)."""
    configured = current_app.config["BACKUP_DIR"]
    return Path(configured) if configured else Path(current_app.instance_path) / "backups"


def default_backup_path() -> Path:
    stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%S%fZ")
    return backup_dir() / f"backup-{stamp}"


def _database_url() -> str:
    """The database as the app connects to it: DATABASE_PASSWORD (Vault or the environment) filled
    into a URL that has none. The dump and restore tools get it as PGPASSWORD, never on argv."""
    config = current_app.config
    return database_connect_url(config["DATABASE_URL"], config["DATABASE_PASSWORD"])


def take_backup(path: Path | None = None, progress: Progress = _quiet) -> dict[str, Any]:
    """Snapshot every table of the configured database into `path`; returns the manifest."""
    url = _database_url()
    backend = snapshots.backend_of(url)
    path = Path(path) if path else default_backup_path()
    try:
        if path.exists() and any(path.iterdir()):
            raise BackupError(f"{path} exists and is not empty; name a new directory")
        # Private: a backup holds password and key hashes and customers' details.
        path.mkdir(mode=0o700, parents=True, exist_ok=True)
        path.chmod(0o700)
    except OSError as exc:  # not writable, not a directory, a missing parent we cannot create
        raise BackupError(f"cannot write a backup to {path}: {exc.strerror}") from None
    data_file = path / DATA_FILES[backend]
    started = time.monotonic()
    taken_at = dt.datetime.now(dt.UTC)
    progress(f"backing up the {backend} database to {path}")
    try:
        if backend == "postgresql":
            with snapshots.postgresql_snapshot(url) as (connection, snapshot_id):
                progress("counting and checksumming rows (in the backup's snapshot)")
                tables = snapshots.fingerprints(connection, progress)
                revision = snapshots.schema_revision(tables, connection)
                progress("dumping (pg_dump, same snapshot)")
                snapshots.dump_postgresql(url, data_file, snapshot_id, progress, **_settings())
        else:
            progress("copying pages (SQLite online backup)")
            snapshots.copy_sqlite(snapshots.sqlite_file(url), data_file, progress)
            progress("counting and checksumming rows")
            with snapshots.connect(f"sqlite:///{data_file}") as connection:
                tables = snapshots.fingerprints(connection, progress)
                revision = snapshots.schema_revision(tables, connection)
    except SnapshotError as exc:
        shutil.rmtree(path, ignore_errors=True)  # never leave a half-written backup behind
        raise BackupError(str(exc)) from None
    manifest = {
        "format": FORMAT_VERSION,
        "database": backend,
        "taken_at": taken_at.isoformat(),
        "seconds": round(time.monotonic() - started, 3),
        "schema_revision": revision,
        "data_file": data_file.name,
        "data_bytes": data_file.stat().st_size,
        "data_sha256": snapshots.file_sha256(data_file),
        "tables": tables,
    }
    (path / MANIFEST).write_text(json.dumps(manifest, indent=2, sort_keys=True))
    for written in path.iterdir():
        written.chmod(0o600)
    rows = sum(t["rows"] for t in tables.values())
    progress(f"done: {len(tables)} tables, {rows} rows, {manifest['data_bytes']} bytes")
    log.info("backup taken", extra={"path": str(path), "rows": rows})
    return manifest


def read_manifest(path: Path) -> dict[str, Any]:
    """The manifest of a finished backup, with its data file checked against its checksum."""
    manifest_file = Path(path) / MANIFEST
    if not manifest_file.is_file():
        raise BackupError(f"{path} holds no {MANIFEST}: not a finished backup")
    try:
        manifest = json.loads(manifest_file.read_text())
        data_file = Path(path) / manifest["data_file"]
        expected = manifest["data_sha256"]
    except (ValueError, KeyError, TypeError):
        raise BackupError(f"{manifest_file} is damaged") from None
    if not data_file.is_file() or snapshots.file_sha256(data_file) != expected:
        raise BackupError(f"{data_file.name} does not match its checksum: the backup is damaged")
    return manifest


def restore_backup(
    path: Path, *, force: bool = False, progress: Progress = _quiet, actor: Actor = SYSTEM
) -> RestoreReport:
    """Replace the configured database with the backup at `path`, then verify it."""
    path = Path(path)
    url = _database_url()
    backend = snapshots.backend_of(url)
    manifest = read_manifest(path)
    if manifest["database"] != backend:
        raise BackupError(f"this is a {manifest['database']} backup; the database is {backend}")
    started = time.monotonic()
    db.session.remove()
    db.engine.dispose()  # our own pooled connections would hold locks the restore needs
    if not force and _target_holds_data(url, backend):
        raise BackupError("the database is not empty; pass --force to replace everything in it")
    progress(f"restoring {path} ({manifest['taken_at']}) into the {backend} database")
    data_file = path / manifest["data_file"]
    try:
        if backend == "postgresql":
            snapshots.restore_postgresql(url, data_file, progress, **_settings())
        else:
            _restore_sqlite(data_file, snapshots.sqlite_file(url), progress)
    except SnapshotError as exc:
        raise BackupError(str(exc)) from None
    report = verify_restore(path, manifest, progress)
    report.seconds = round(time.monotonic() - started, 3)
    db.engine.dispose()
    audit.record(
        actor,
        "database.restore",
        "backup",
        path.name,
        after={"taken_at": manifest["taken_at"], "ok": report.ok, "rows": report.rows},
    )
    db.session.commit()
    return report


def _target_holds_data(url: str, backend: str) -> bool:
    if backend == "sqlite" and not snapshots.sqlite_file(url).exists():
        return False
    with snapshots.connect(url) as connection:
        return snapshots.holds_data(connection)


def _restore_sqlite(data_file: Path, target: Path, progress: Progress) -> None:
    # Copy from a scratch copy: the backup itself stays byte-for-byte untouched (its checksum).
    target.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as scratch:
        source = Path(scratch) / "restore.sqlite3"
        shutil.copyfile(data_file, source)
        snapshots.check_sqlite(source)
        snapshots.copy_sqlite(source, target, progress)


def verify_restore(path: Path, manifest: dict[str, Any], progress: Progress) -> RestoreReport:
    """Compare the database with the manifest (counts, checksums) and run check-integrity."""
    progress("verifying row counts and checksums")
    with snapshots.connect(_database_url()) as connection:
        found = snapshots.fingerprints(connection)
        revision = snapshots.schema_revision(found, connection)
    expected = manifest["tables"]
    mismatches = []
    for name in sorted(set(expected) | set(found)):
        want, got = expected.get(name), found.get(name)
        if want is None or got is None:
            mismatches.append(f"{name}: table {'missing' if got is None else 'not in the backup'}")
        elif want["rows"] != got["rows"]:
            mismatches.append(f"{name}: {got['rows']} rows, the backup has {want['rows']}")
        elif want["sha256"] != got["sha256"]:
            mismatches.append(f"{name}: same row count but different content")
    if revision != manifest["schema_revision"]:
        wanted = manifest["schema_revision"]
        mismatches.append(f"schema revision {revision}, the backup has {wanted}")
    report = RestoreReport(
        path=path,
        schema_revision=revision,
        tables=len(found),
        rows=sum(t["rows"] for t in found.values()),
        seconds=0.0,
        mismatches=mismatches,
    )
    report.integrity = run_integrity_check(progress)
    if report.integrity.startswith("FAILED"):
        report.mismatches.append("check-integrity: " + report.integrity)
    return report


def run_integrity_check(progress: Progress) -> str:
    """`check-integrity`'s service when the deployment has it; a short verdict either way."""
    try:
        module = importlib.import_module("app.services.integrity")
    except ModuleNotFoundError:
        progress("check-integrity is not available in this release; skipped")
        return "skipped (not available)"
    check = getattr(module, "check_integrity", None)
    if check is None:
        progress("check-integrity service has no check_integrity(); skipped")
        return "skipped (not available)"
    progress("running check-integrity")
    outcome = check()
    problems = getattr(outcome, "problems", outcome)
    if isinstance(outcome, bool):
        problems = [] if outcome else ["check failed"]
    if problems:
        return "FAILED: " + "; ".join(str(p) for p in list(problems)[:5])
    return "ok"


def finished_backups(directory: Path) -> list[Path]:
    """Finished backups in a directory, oldest first."""
    if not directory.is_dir():
        return []
    return sorted(p for p in directory.glob("backup-*") if (p / MANIFEST).is_file())


def prune_backups(directory: Path, keep: int) -> list[Path]:
    """Delete all but the newest `keep` finished backups; returns what was deleted."""
    doomed = finished_backups(directory)[: max(0, len(finished_backups(directory)) - keep)]
    for path in doomed:
        shutil.rmtree(path, ignore_errors=True)
    return doomed


def backup_if_due(redis_client, now: float | None = None) -> Path | None:
    """The scheduler's call: back up when BACKUP_INTERVAL_SECONDS passed, then prune."""
    config = current_app.config
    interval = config["BACKUP_INTERVAL_SECONDS"]
    if interval <= 0:
        return None
    directory = backup_dir()
    existing = finished_backups(directory)
    now = time.time() if now is None else now
    if existing and now - (existing[-1] / MANIFEST).stat().st_mtime < interval:
        return None
    lock = redis_client.lock(config["QUEUE_PREFIX"] + BACKUP_LOCK, timeout=3600, blocking=False)
    if not lock.acquire(blocking=False):
        return None
    try:
        path = default_backup_path()
        take_backup(path)
        prune_backups(directory, config["BACKUP_RETENTION"])
        return path
    except BackupError:
        log.exception("scheduled backup failed")
        return None
    finally:
        lock.release()
