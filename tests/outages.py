"""Outages the outage tests stage: a PostgreSQL database of a test's own that goes away (refusing
connections, its sessions ended) and comes back, and a Redis server of a test's own (on a free
port, never the shared one) that is stopped and started again, empty."""

from __future__ import annotations

import shutil
import subprocess
import time
import uuid

import redis
from sqlalchemy import create_engine, text

from tests.conftest import PG_ADMIN_URL
from tests.servers import free_port

REDIS_SERVER = shutil.which("redis-server")


class OutageDatabase:
    """`with OutageDatabase() as database:` creates it; leaving the block drops it."""

    def __init__(self, prefix: str = "op_outage"):
        self.name = f"{prefix}_{uuid.uuid4().hex[:8]}"
        self.url = PG_ADMIN_URL.rsplit("/", 1)[0] + f"/{self.name}"
        self.admin = create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")

    def _execute(self, *statements: str) -> None:
        with self.admin.connect() as connection:
            for statement in statements:
                connection.execute(text(statement), {"n": self.name})

    def __enter__(self) -> OutageDatabase:
        self._execute(f'CREATE DATABASE "{self.name}"')
        return self

    def go_away(self) -> None:
        """New connections are refused and open ones are ended."""
        self._execute(
            f'ALTER DATABASE "{self.name}" ALLOW_CONNECTIONS false',
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = :n",
        )

    def come_back(self) -> None:
        self._execute(f'ALTER DATABASE "{self.name}" ALLOW_CONNECTIONS true')

    def __exit__(self, *_exc) -> None:
        # FORCE ends what is still connected (the apps' pools are disposed by make_app).
        self._execute(f'DROP DATABASE IF EXISTS "{self.name}" WITH (FORCE)')
        self.admin.dispose()


class OwnRedis:
    """A redis-server process of the test's own; `own_redis` (tests/integration/conftest.py)
    starts one and stops it after the test."""

    def __init__(self, directory):
        self.port = free_port()
        self.dir = directory
        self.process = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        self.process = subprocess.Popen(  # noqa: S603
            [REDIS_SERVER, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
             "--appendonly", "no", "--dir", str(self.dir)],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                redis.Redis(port=self.port, socket_connect_timeout=0.2).ping()
                return
            except redis.RedisError:
                time.sleep(0.05)
        raise RuntimeError("own redis-server did not start")

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(timeout=10)
