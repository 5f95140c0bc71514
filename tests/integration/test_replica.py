"""Read-replica routing against a real PostgreSQL streaming replica built on loopback.

The test pauses WAL replay on the replica: what the replica serves then is visibly stale, so a list
that lacks the newest order proves it was read from the replica, and a write that succeeds proves it
went to the primary (a hot standby refuses writes).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text

from app.infra.replica import replica_eligible
from tests.conftest import migrate
from tests.helpers import (
    admin_headers,
    create_product,
    create_user,
    merchant_with_key,
    order_body,
    web_login,
)
from tests.servers import free_port

PG_BIN = Path(os.environ.get("TEST_PG_BIN", "/usr/lib/postgresql/15/bin"))


def run_as_postgres(*argv: str) -> None:
    """PostgreSQL refuses to run as root: run its tools as the postgres user when we are root."""
    prefix = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
    subprocess.run([*prefix, *argv], check=True, capture_output=True, timeout=120)


class StreamingPair:
    """A primary and a hot-standby replica (pg_basebackup -R), each on a free loopback port."""

    def __init__(self, root: Path):
        self.root = root
        self.primary_port, self.replica_port = free_port(), free_port()
        primary, replica = root / "primary", root / "replica"
        run_as_postgres(str(PG_BIN / "initdb"), "-D", str(primary), "-U", "postgres",
                        "--auth=trust", "-E", "UTF8", "--no-sync")
        with open(primary / "postgresql.conf", "a") as conf:
            conf.write(
                f"\nport = {self.primary_port}\nlisten_addresses = '127.0.0.1'\n"
                f"unix_socket_directories = '{root}'\nwal_level = replica\nmax_wal_senders = 5\n"
                "fsync = off\nhot_standby = on\n"
            )
        self.dirs = [primary]
        self._start(primary)
        run_as_postgres(str(PG_BIN / "pg_basebackup"), "-h", "127.0.0.1", "-p",
                        str(self.primary_port), "-U", "postgres", "-D", str(replica), "-R",
                        "-X", "stream")
        with open(replica / "postgresql.auto.conf", "a") as conf:
            conf.write(f"\nport = {self.replica_port}\n")
        self.dirs.append(replica)
        self._start(replica)

    def _start(self, data_dir: Path) -> None:
        run_as_postgres(str(PG_BIN / "pg_ctl"), "-D", str(data_dir), "-l",
                        str(data_dir.parent / f"{data_dir.name}.log"), "-w", "start")

    def stop_replica(self) -> None:
        run_as_postgres(str(PG_BIN / "pg_ctl"), "-D", str(self.dirs[1]), "-m", "immediate",
                        "-w", "stop")

    def url(self, port: int, database: str = "postgres") -> str:
        return f"postgresql+psycopg://postgres@127.0.0.1:{port}/{database}"

    def stop(self) -> None:
        for data_dir in reversed(self.dirs):
            try:
                run_as_postgres(str(PG_BIN / "pg_ctl"), "-D", str(data_dir), "-m", "immediate",
                                "-w", "stop")
            except subprocess.CalledProcessError:
                pass


@pytest.fixture(scope="module")
def streaming_pair(tmp_path_factory, redis_url):
    if not (PG_BIN / "pg_basebackup").exists():
        pytest.skip(f"PostgreSQL server binaries not found in {PG_BIN}")
    root = Path(tempfile.mkdtemp(prefix="op-replica-"))
    if os.geteuid() == 0:
        shutil.chown(root, "postgres", "postgres")
    pair = StreamingPair(root)
    try:
        admin = create_engine(pair.url(pair.primary_port), isolation_level="AUTOCOMMIT")
        with admin.connect() as connection:
            connection.execute(text("CREATE DATABASE orders"))
        admin.dispose()
        migrate(pair.url(pair.primary_port, "orders"), redis_url,
                tmp_path_factory.mktemp("replica-migrate"))
        yield pair
    finally:
        pair.stop()
        shutil.rmtree(root, ignore_errors=True)


def replica_caught_up(pair: StreamingPair) -> None:
    primary = create_engine(pair.url(pair.primary_port), isolation_level="AUTOCOMMIT")
    replica = create_engine(pair.url(pair.replica_port), isolation_level="AUTOCOMMIT")
    try:
        with primary.connect() as p:
            target = p.execute(text("SELECT pg_current_wal_lsn()")).scalar()
        deadline = time.monotonic() + 30
        with replica.connect() as r:
            while time.monotonic() < deadline:
                lag = r.execute(text("SELECT pg_wal_lsn_diff(:t, pg_last_wal_replay_lsn())"),
                                {"t": target}).scalar()
                if lag <= 0:
                    return
                time.sleep(0.05)
        raise AssertionError("the replica did not catch up within 30 s")
    finally:
        primary.dispose()
        replica.dispose()


def set_replay(pair: StreamingPair, paused: bool) -> None:
    replica = create_engine(pair.url(pair.replica_port), isolation_level="AUTOCOMMIT")
    with replica.connect() as r:
        r.execute(text(f"SELECT pg_wal_replay_{'pause' if paused else 'resume'}()"))
    replica.dispose()


@pytest.mark.slow
def test_lists_and_dashboard_pages_read_from_the_replica_and_writes_go_to_the_primary(
    make_app, streaming_pair
):
    pair = streaming_pair
    app = make_app(pair.url(pair.primary_port, "orders"),
                   DATABASE_REPLICA_URL=pair.url(pair.replica_port, "orders"))
    client = app.test_client()
    admin = admin_headers(app, client)
    _merchant, headers = merchant_with_key(client, admin)
    create_product(client, headers, stock=50)
    first = client.post("/api/v1/orders", json=order_body(), headers=headers).get_json()["id"]
    create_user(app, "replica-operator", "operator")
    replica_caught_up(pair)
    set_replay(pair, paused=True)
    try:
        # A write during paused replay succeeds: it went to the primary (the standby refuses).
        placed = client.post("/api/v1/orders", json=order_body(), headers=headers)
        assert placed.status_code == 202
        second = placed.get_json()["id"]
        listed = [o["id"] for o in client.get("/api/v1/orders", headers=headers).get_json()["data"]]
        assert listed == [first], "the list is served by the (paused, stale) replica"
        # Reading one order stays on the primary: a merchant polling its new order sees it.
        assert client.get(f"/api/v1/orders/{second}", headers=headers).status_code == 200
        web = app.test_client()
        web_login(web, "replica-operator")
        page = web.get("/orders").get_data(as_text=True)
        assert first in page and second not in page, "dashboard pages read from the replica"
    finally:
        set_replay(pair, paused=False)
    replica_caught_up(pair)
    listed = [o["id"] for o in client.get("/api/v1/orders", headers=headers).get_json()["data"]]
    assert listed == [second, first]
    assert second in web.get("/orders").get_data(as_text=True)


def test_only_read_only_list_and_page_requests_are_eligible_for_the_replica():
    assert replica_eligible("GET", "api", "api.list_orders", "/api/v1/orders")
    assert not replica_eligible("GET", "api", "api.get_order", "/api/v1/orders/<order_id>")
    assert not replica_eligible("POST", "api", "api.place_order", "/api/v1/orders")
    assert replica_eligible("GET", "web", "web.order_list", "/orders")
    assert not replica_eligible("GET", "web", "web.login", "/login")
    assert not replica_eligible("POST", "web", "web.order_action", "/orders/<order_id>/retry")
    assert not replica_eligible("GET", "health", "health.readyz", "/readyz")


@pytest.mark.slow
def test_when_the_replica_is_lost_reads_fall_back_to_the_primary(make_app, streaming_pair):
    pair = streaming_pair
    app = make_app(pair.url(pair.primary_port, "orders"),
                   DATABASE_REPLICA_URL=pair.url(pair.replica_port, "orders"))
    client = app.test_client()
    admin = admin_headers(app, client)
    _merchant, headers = merchant_with_key(client, admin, name="Failover")
    create_product(client, headers, sku="FO-1", stock=5)
    replica_caught_up(pair)
    assert client.get("/api/v1/products", headers=headers).status_code == 200
    pair.stop_replica()
    # The request that finds the replica gone may fail; the ones after it read the primary.
    first = client.get("/api/v1/products", headers=headers)
    if first.status_code != 200:
        assert first.status_code == 503 and first.mimetype == "application/problem+json"
    create_product(client, headers, sku="FO-2", stock=5)
    listed = client.get("/api/v1/products", headers=headers)
    assert listed.status_code == 200
    assert {p["sku"] for p in listed.get_json()["data"]} == {"FO-1", "FO-2"}
