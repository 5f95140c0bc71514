"""A PostgreSQL database of a test's own that goes away (refusing connections, its sessions
ended) and comes back - the database outage the outage tests stage."""

from __future__ import annotations

import uuid

from sqlalchemy import create_engine, text

from tests.conftest import PG_ADMIN_URL


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
