"""Backups and restores on real SQLite and PostgreSQL: consistent, verified, refused when unsafe."""

from __future__ import annotations

import json
import threading
import time
import uuid

import pytest
from sqlalchemy import create_engine, func, select, text

from app.infra import snapshots
from app.services import backups
from tests.conftest import PG_ADMIN_URL
from tests.helpers import admin_headers, create_product, drain_queues, merchant_with_key, order_body


@pytest.fixture
def empty_database_url(database_url, tmp_path):
    """A brand-new, empty database of the same kind as the test's."""
    if database_url.startswith("sqlite"):
        yield f"sqlite:///{tmp_path / 'restored.db'}"
        return
    name = f"op_restore_{uuid.uuid4().hex[:8]}"
    admin = create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f'CREATE DATABASE "{name}"'))
    yield PG_ADMIN_URL.rsplit("/", 1)[0] + f"/{name}"
    with admin.connect() as connection:
        connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


def place_orders(app, count: int, tokens=("tok_visa", "tok_chargeDeclined")) -> list[str]:
    client = app.test_client()
    admin = admin_headers(app, client)
    _merchant, headers = merchant_with_key(client, admin)
    create_product(client, headers, stock=1000)
    ids = []
    for n in range(count):
        response = client.post(
            "/api/v1/orders", json=order_body(token=tokens[n % len(tokens)]), headers=headers
        )
        assert response.status_code == 202
        ids.append(response.get_json()["id"])
    drain_queues(app)
    return ids


def fingerprints_of(url: str) -> dict:
    with snapshots.connect(url) as connection:
        return snapshots.fingerprints(connection)


def test_restore_into_an_empty_database_reproduces_every_row(app, make_app, empty_database_url,
                                                             tmp_path):
    order_ids = place_orders(app, 6)
    lines = []
    with app.app_context():
        manifest = backups.take_backup(tmp_path / "b1", progress=lines.append)
    assert manifest["tables"]["orders"]["rows"] == 6
    assert manifest["schema_revision"]
    assert any("orders" in line for line in lines), "progress names each table"
    source = fingerprints_of(app.config["DATABASE_URL"])

    target = make_app(empty_database_url)
    with target.app_context():
        report = backups.restore_backup(tmp_path / "b1")
    assert report.ok, report.mismatches
    assert report.schema_revision == manifest["schema_revision"]
    restored = fingerprints_of(empty_database_url)
    assert {k: v for k, v in restored.items() if k != "audit_log"} == {
        k: v for k, v in source.items() if k != "audit_log"
    }
    # The restore itself is audited, on top of the audit rows the backup held.
    assert restored["audit_log"]["rows"] == source["audit_log"]["rows"] + 1
    client = target.test_client()
    admin = admin_headers(target, client)
    assert client.get(f"/api/v1/orders/{order_ids[0]}", headers=admin).get_json()["status"] in (
        "completed", "failed",
    )


def test_restore_refuses_a_database_holding_data_unless_forced(app, tmp_path):
    place_orders(app, 2)
    with app.app_context():
        backups.take_backup(tmp_path / "b1")
        with pytest.raises(backups.BackupError, match="not empty.*--force"):
            backups.restore_backup(tmp_path / "b1")
        report = backups.restore_backup(tmp_path / "b1", force=True)
    assert report.ok, report.mismatches


def test_a_damaged_backup_is_refused_before_anything_is_touched(sqlite_app, tmp_path):
    place_orders(sqlite_app, 1)
    with sqlite_app.app_context():
        manifest = backups.take_backup(tmp_path / "b1")
    data = tmp_path / "b1" / manifest["data_file"]
    raw = bytearray(data.read_bytes())
    raw[len(raw) // 2] ^= 0xFF
    data.write_bytes(bytes(raw))
    before = fingerprints_of(sqlite_app.config["DATABASE_URL"])
    with sqlite_app.app_context(), pytest.raises(backups.BackupError, match="damaged"):
        backups.restore_backup(tmp_path / "b1", force=True)
    assert fingerprints_of(sqlite_app.config["DATABASE_URL"]) == before


def test_verification_reports_tables_that_do_not_match_the_manifest(sqlite_app, make_app, tmp_path):
    place_orders(sqlite_app, 3)
    with sqlite_app.app_context():
        backups.take_backup(tmp_path / "b1")
    manifest_file = tmp_path / "b1" / "manifest.json"
    manifest = json.loads(manifest_file.read_text())
    manifest["tables"]["orders"]["rows"] = 4  # as if a row had been lost on the way
    manifest["tables"]["products"]["sha256"] = "0" * 64
    manifest_file.write_text(json.dumps(manifest))
    target = make_app(f"sqlite:///{tmp_path / 'restored.db'}")
    with target.app_context():
        report = backups.restore_backup(tmp_path / "b1")
    assert not report.ok
    assert "orders: 3 rows, the backup has 4" in report.mismatches
    assert "products: same row count but different content" in report.mismatches


def test_backup_taken_under_concurrent_writes_is_one_consistent_snapshot(
    app, make_app, empty_database_url, tmp_path
):
    place_orders(app, 2)
    client = app.test_client()
    admin = admin_headers(app, client)
    _merchant, headers = merchant_with_key(client, admin, name="Writer")
    create_product(client, headers, sku="W-1", stock=100000)
    stop = threading.Event()

    def keep_ordering():
        writer = app.test_client()
        while not stop.is_set():
            writer.post("/api/v1/orders", json=order_body(items=[{"sku": "W-1", "quantity": 1}]),
                        headers=headers)

    thread = threading.Thread(target=keep_ordering)
    thread.start()
    try:
        time.sleep(0.3)
        with app.app_context():
            backups.take_backup(tmp_path / "b1")
        time.sleep(0.2)
    finally:
        stop.set()
        thread.join()
    target = make_app(empty_database_url)
    with target.app_context():
        report = backups.restore_backup(tmp_path / "b1")
        assert report.ok, report.mismatches
        from app.extensions import db
        from app.infra.models import Order, OrderLine, SagaStep

        orders = db.session.scalar(select(func.count()).select_from(Order))
        # Every order came with its line and its four saga steps in one transaction: a torn
        # snapshot would show orders without them.
        assert db.session.scalar(select(func.count()).select_from(OrderLine)) == orders
        assert db.session.scalar(select(func.count()).select_from(SagaStep)) == 4 * orders
    assert orders > 2, "the writer placed orders while the backup ran"


def test_cli_backup_shows_progress_and_restore_verifies(sqlite_app, make_app, tmp_path):
    place_orders(sqlite_app, 2)
    result = sqlite_app.test_cli_runner().invoke(args=["backup", str(tmp_path / "b1")])
    assert result.exit_code == 0, result.output
    assert "copied 100%" in result.output and "orders: 2 rows" in result.output
    assert f"backup {tmp_path / 'b1'}" in result.output
    refused = sqlite_app.test_cli_runner().invoke(args=["restore", str(tmp_path / "b1")])
    assert refused.exit_code == 1 and "--force" in refused.output
    target = make_app(f"sqlite:///{tmp_path / 'fresh.db'}")
    restored = target.test_cli_runner().invoke(args=["restore", str(tmp_path / "b1")])
    assert restored.exit_code == 0, restored.output
    assert "restore verified" in restored.output


def test_a_backup_path_that_cannot_be_written_is_a_one_line_error(sqlite_app, tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a directory")
    for target in (blocker / "backup", "/proc/no-such/backup"):
        result = sqlite_app.test_cli_runner().invoke(args=["backup", str(target)])
        assert result.exit_code == 1, result.output
        assert f"error: cannot write a backup to {target}" in result.output
        assert "Traceback" not in result.output and result.exception.__class__ is SystemExit


def test_scheduler_takes_backups_on_its_cadence_and_keeps_only_the_retention(make_app,
                                                                           sqlite_database_url,
                                                                           tmp_path):
    from worker.scheduler import Scheduler

    app = make_app(sqlite_database_url, BACKUP_INTERVAL_SECONDS=3600, BACKUP_RETENTION=2,
                   BACKUP_DIR=str(tmp_path / "backups"))
    place_orders(app, 1)
    Scheduler(app, 1).tick()
    with app.app_context():
        assert len(backups.finished_backups(tmp_path / "backups")) == 1
        assert backups.backup_if_due(app.extensions["redis"]) is None, "not due yet"
        later = time.time()
        for hours in (1, 2, 3):
            assert backups.backup_if_due(app.extensions["redis"], later + hours * 3600 + 1)
            time.sleep(0.01)
    kept = backups.finished_backups(tmp_path / "backups")
    assert len(kept) == 2


def test_backups_connect_with_the_database_password_the_app_uses(make_app,
                                                                 postgresql_database_url):
    """DATABASE_PASSWORD (from Vault or the environment) reaches the dump and restore tools as
    PGPASSWORD when the URL carries none - never on a command line."""
    from sqlalchemy.engine import make_url

    app = make_app(postgresql_database_url, DATABASE_PASSWORD="from-vault-1234")
    with app.app_context():
        url = backups._database_url()
    assert make_url(url).password == "from-vault-1234"
    assert snapshots.libpq_env(url)["PGPASSWORD"] == "from-vault-1234"


def test_a_restore_that_fails_midway_leaves_the_old_data_in_place(app, tmp_path):
    """A dump cut short whose manifest was rewritten to match passes the checksum; the restore
    must then fail without having dropped anything (it used to drop the schema first)."""
    place_orders(app, 2)
    with app.app_context():
        manifest = backups.take_backup(tmp_path / "b1")
    data = tmp_path / "b1" / manifest["data_file"]
    data.write_bytes(data.read_bytes()[: data.stat().st_size * 2 // 3])
    manifest["data_sha256"] = snapshots.file_sha256(data)
    manifest["data_bytes"] = data.stat().st_size
    (tmp_path / "b1" / "manifest.json").write_text(json.dumps(manifest))
    before = fingerprints_of(app.config["DATABASE_URL"])
    with app.app_context(), pytest.raises(backups.BackupError) as refused:
        backups.restore_backup(tmp_path / "b1", force=True)
    assert "Traceback" not in str(refused.value)
    assert fingerprints_of(app.config["DATABASE_URL"]) == before


def test_backups_are_readable_by_their_owner_only(sqlite_app, tmp_path):
    with sqlite_app.app_context():
        backups.take_backup(tmp_path / "b1")
    assert (tmp_path / "b1").stat().st_mode & 0o777 == 0o700
    modes = {f.name: f.stat().st_mode & 0o777 for f in (tmp_path / "b1").iterdir()}
    assert modes and set(modes.values()) == {0o600}, modes
