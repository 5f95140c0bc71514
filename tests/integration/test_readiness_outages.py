"""/readyz follows Redis and the database going away and coming back; /healthz stays 200.

Redis is a server of our own on a free port (never the shared one); the database is a PostgreSQL
database of our own whose connections we ban and allow again.
"""

import shutil
import subprocess
import time
import uuid

import pytest
from sqlalchemy import create_engine, text

from tests.conftest import PG_ADMIN_URL
from tests.servers import free_port

REDIS_SERVER = shutil.which("redis-server")


class OwnRedis:
    def __init__(self, tmp_path):
        self.port = free_port()
        self.dir = tmp_path
        self.process = None

    def start(self):
        self.process = subprocess.Popen(  # noqa: S603
            [REDIS_SERVER, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
             "--appendonly", "no", "--dir", str(self.dir)],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )
        import redis

        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                redis.Redis(port=self.port, socket_connect_timeout=0.2).ping()
                return
            except redis.RedisError:
                time.sleep(0.05)
        raise RuntimeError("own redis-server did not start")

    def stop(self):
        if self.process and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(timeout=10)


def seconds_until(client, wanted_status, limit=10.0) -> float:
    started = time.monotonic()
    while time.monotonic() - started < limit:
        if client.get("/readyz").status_code == wanted_status:
            return time.monotonic() - started
        time.sleep(0.1)
    raise AssertionError(f"/readyz never answered {wanted_status}")


@pytest.mark.skipif(REDIS_SERVER is None, reason="redis-server is not installed")
def test_readiness_follows_redis_going_down_and_coming_back(make_app, sqlite_database_url,
                                                            tmp_path):
    redis_server = OwnRedis(tmp_path)
    redis_server.start()
    try:
        app = make_app(sqlite_database_url, REDIS_URL=f"redis://127.0.0.1:{redis_server.port}/0")
        client = app.test_client()
        assert client.get("/readyz").status_code == 200
        redis_server.stop()
        assert seconds_until(client, 503) < 5
        body = client.get("/readyz").get_json()
        assert body["failed"] == ["redis"] and body["checks"]["database"] == "ok"
        assert client.get("/healthz").status_code == 200
        assert client.get("/metrics").status_code == 200
        redis_server.start()
        assert seconds_until(client, 200) < 5
    finally:
        redis_server.stop()


def test_readiness_follows_the_database_going_away_and_coming_back(make_app):
    name = f"op_ready_{uuid.uuid4().hex[:8]}"
    admin = create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        app = make_app(PG_ADMIN_URL.rsplit("/", 1)[0] + f"/{name}")
        client = app.test_client()
        assert client.get("/readyz").status_code == 200
        with admin.connect() as connection:
            connection.execute(text(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS false'))
            connection.execute(
                text("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = :n"),
                {"n": name},
            )
        assert seconds_until(client, 503) < 5
        assert client.get("/readyz").get_json()["failed"] == ["database"]
        assert client.get("/healthz").status_code == 200
        with admin.connect() as connection:
            connection.execute(text(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS true'))
        assert seconds_until(client, 200) < 5
    finally:
        from app.extensions import db

        for built in [app] if "app" in locals() else []:
            with built.app_context():
                db.engine.dispose()
        with admin.connect() as connection:
            connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()
