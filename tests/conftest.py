"""Shared fixtures: real SQLite and PostgreSQL databases, a real Redis, real RQ workers.

- `app` / `client` run a test once per database (SQLite and PostgreSQL);
- `sqlite_app` / `sqlite_client` run it on SQLite only (for HTTP-contract tests where the database
  does not matter);
- every test gets empty tables and an empty Redis database; schemas are built with the real
  migrations once per session.

PostgreSQL and Redis come from TEST_POSTGRES_URL / TEST_REDIS_URL (defaults: the local servers).
"""

from __future__ import annotations

import os
import uuid
from pathlib import Path

import pytest
import redis as redis_lib
from sqlalchemy import create_engine, text

PG_ADMIN_URL = os.environ.get(
    "TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
)
REDIS_BASE_URL = os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379")

TEST_SECRETS = {
    "SECRET_KEY": "test-secret-key-" + "s" * 40,
    "JWT_SIGNING_KEY": "test-jwt-signing-key-" + "j" * 40,
    "WEBHOOK_MASTER_KEY": "test-webhook-master-key-" + "w" * 40,
}
PASSWORD = "correct horse battery staple"


def xdist_index() -> int:
    name = os.environ.get("PYTEST_XDIST_WORKER", "gw0")
    return int(name[2:]) if name.startswith("gw") else 0


def base_overrides(database_url: str, redis_url: str, instance: Path) -> dict:
    return {
        "ENV": "testing",
        "DATABASE_URL": database_url,
        "REDIS_URL": redis_url,
        "INSTANCE_PATH": str(instance),
        "LOG_FORMAT": "json",
        "LOG_LEVEL": "WARNING",
        "SCHEDULER_INTERVAL_SECONDS": 1,
        **TEST_SECRETS,
    }


def migrate(database_url: str, redis_url: str, instance: Path) -> None:
    """Build the schema with the real migrations (flask db upgrade)."""
    from flask_migrate import upgrade

    from app.extensions import db
    from app.factory import create_app

    app = create_app(base_overrides(database_url, redis_url, instance))
    with app.app_context():
        upgrade()
        db.engine.dispose()


@pytest.fixture(scope="session")
def redis_url() -> str:
    """A Redis database of its own for this xdist worker (1..15), flushed around each test."""
    # TEST_REDIS_DB picks the first database, so parallel runs on one machine don't collide.
    first = int(os.environ.get("TEST_REDIS_DB", "1"))
    url = f"{REDIS_BASE_URL}/{(first + xdist_index()) % 16}"
    redis_lib.Redis.from_url(url).ping()
    return url


@pytest.fixture(scope="session")
def postgresql_database_url(tmp_path_factory, redis_url) -> str:
    name = f"op_test_{xdist_index()}_{uuid.uuid4().hex[:8]}"
    admin = create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f'CREATE DATABASE "{name}"'))
    url = PG_ADMIN_URL.rsplit("/", 1)[0] + f"/{name}"
    migrate(url, redis_url, tmp_path_factory.mktemp("pg-migrate"))
    test_database_urls.add(url)
    yield url
    with admin.connect() as connection:
        connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory, redis_url) -> Path:
    """A migrated SQLite file; each test gets a copy (cheaper than emptying, and the append-only
    audit triggers forbid DELETE)."""
    path = tmp_path_factory.mktemp("sqlite") / "template.db"
    migrate(f"sqlite:///{path}", redis_url, tmp_path_factory.mktemp("sqlite-migrate"))
    return path


@pytest.fixture
def sqlite_database_url(sqlite_template, tmp_path) -> str:
    import shutil

    path = tmp_path / "orders.db"
    shutil.copyfile(sqlite_template, path)
    return f"sqlite:///{path}"


def _empty_all_tables(app) -> None:
    from app.extensions import db

    with app.app_context():
        db.session.remove()
        tables = [t.name for t in reversed(db.metadata.sorted_tables)]
        with db.engine.begin() as connection:
            if db.engine.dialect.name == "postgresql":
                # The audit log refuses TRUNCATE (its append-only triggers); a superuser test
                # run may skip triggers for this transaction, as a replication apply would.
                connection.execute(text("SET LOCAL session_replication_role = replica"))
                connection.execute(
                    text(
                        "TRUNCATE "
                        + ", ".join(f'"{t}"' for t in tables)
                        + " RESTART IDENTITY CASCADE"
                    )
                )
            else:
                for table in tables:
                    connection.execute(text(f'DELETE FROM "{table}"'))  # noqa: S608 - our table names
        db.engine.dispose()


# The session's PostgreSQL database: tables are emptied after each test that built an app on it.
test_database_urls: set[str] = set()


@pytest.fixture
def make_app(redis_url, tmp_path):
    """Build apps against a database URL; tables and Redis are emptied after the test."""
    built = []
    redis_client = redis_lib.Redis.from_url(redis_url)
    redis_client.flushdb()

    def factory(database_url: str, **overrides):
        from app.factory import create_app

        settings = base_overrides(database_url, redis_url, tmp_path / "instance")
        settings.update(overrides)
        app = create_app(settings)
        built.append(app)
        return app

    yield factory
    for app in built:
        if app.config["DATABASE_URL"] in test_database_urls:
            _empty_all_tables(app)
            break
    for app in built:
        from app.extensions import db

        with app.app_context():
            db.engine.dispose()
    redis_client.flushdb()


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request) -> str:
    """Each test using it runs twice: on SQLite and on PostgreSQL."""
    return request.getfixturevalue(f"{request.param}_database_url")


@pytest.fixture
def app(make_app, database_url):
    return make_app(database_url)


@pytest.fixture
def client(app):
    return app.test_client()


@pytest.fixture
def sqlite_app(make_app, sqlite_database_url):
    return make_app(sqlite_database_url)


@pytest.fixture
def sqlite_client(sqlite_app):
    return sqlite_app.test_client()


@pytest.fixture(scope="session")
def vault(tmp_path_factory):
    """A real OpenBao dev server (KV v2 mounted at secret/) on a free loopback port."""
    from tests.vault import DevVault

    server = DevVault(tmp_path_factory.mktemp("vault"))
    yield server
    server.stop()
