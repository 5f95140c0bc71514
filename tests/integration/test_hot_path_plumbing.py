"""The plumbing the API's hot paths rely on: buffered SLO counts, idle-connection pings, and the
rate limit's single round trip."""

from __future__ import annotations

import time

from sqlalchemy import create_engine, text

from app.domain.slo import API_AVAILABILITY, Counts
from app.infra.database import (
    IDLE_PING_SECONDS,
    engine_options,
    one_row_autocommit,
    ping_idle_connections,
)
from app.observability.slo_buckets import FLUSH_INTERVAL_SECONDS, SloBuckets
from tests.conftest import PG_ADMIN_URL


def test_request_counts_reach_redis_for_other_processes_within_the_flush_interval(sqlite_app):
    redis = sqlite_app.extensions["redis"]
    writer = SloBuckets(redis, prefix="hot:")
    reader = SloBuckets(redis, prefix="hot:")  # another process's view: nothing buffered
    writer.record_soon([(API_AVAILABILITY.slug, False)] * 3 + [(API_AVAILABILITY.slug, True)])
    deadline = time.monotonic() + FLUSH_INTERVAL_SECONDS * 5
    counts = Counts()
    while time.monotonic() < deadline:
        counts = reader.counts([API_AVAILABILITY.slug])[API_AVAILABILITY.slug]["5m"]
        if counts.total:
            break
        time.sleep(0.05)
    assert counts == Counts(total=4, bad=1)


def test_buffered_counts_survive_a_redis_failure_and_are_written_later(sqlite_app):
    import redis as redis_lib

    broken = SloBuckets(redis_lib.Redis(host="127.0.0.1", port=1, socket_connect_timeout=0.2))
    broken.record_soon([(API_AVAILABILITY.slug, True)])
    assert broken.flush() is False  # Redis unreachable: kept for the next try
    broken.connection = sqlite_app.extensions["redis"]
    assert broken.flush() is False  # backing off: no new attempt (and warning) every second
    assert broken.flush(force=True) is True
    counts = broken.counts([API_AVAILABILITY.slug])[API_AVAILABILITY.slug]["5m"]
    assert counts == Counts(total=1, bad=1)


def test_an_idle_pooled_connection_that_died_is_replaced_before_use(postgresql_database_url):
    engine = create_engine(postgresql_database_url, **engine_options(postgresql_database_url, 1))
    ping_idle_connections(engine)
    admin = create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
    try:
        with engine.connect() as connection:
            first_pid = connection.execute(text("SELECT pg_backend_pid()")).scalar_one()
        time.sleep(IDLE_PING_SECONDS + 0.2)
        with admin.connect() as connection:  # the database drops it while it sits in the pool
            connection.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": first_pid})
        with engine.connect() as connection:  # no error: the ping found it dead
            second_pid = connection.execute(text("SELECT pg_backend_pid()")).scalar_one()
        assert second_pid != first_pid
    finally:
        engine.dispose()
        admin.dispose()


def test_the_autocommit_reader_keeps_one_connection_and_replaces_a_dead_idle_one(
    postgresql_database_url,
):
    """The order-version reader's own connection: reused read after read, in autocommit (no
    transaction left open), and replaced without an error when it died while idle."""
    engine = create_engine(postgresql_database_url, **engine_options(postgresql_database_url, 1))
    admin = create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
    query = "SELECT pg_backend_pid(), now() = statement_timestamp()"
    try:
        first_pid, autocommit = one_row_autocommit(engine, query, ())
        assert autocommit  # now() is the transaction's start: equal only outside a transaction
        assert one_row_autocommit(engine, query, ())[0] == first_pid
        with engine.connect() as connection:  # the pool's connections are not the reader's
            assert connection.execute(text("SELECT pg_backend_pid()")).scalar_one() != first_pid
        time.sleep(IDLE_PING_SECONDS + 0.2)
        with admin.connect() as connection:
            connection.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": first_pid})
        second_pid, _ = one_row_autocommit(engine, query, ())  # no error: one fresh retry
        assert second_pid != first_pid
        assert one_row_autocommit(engine, query, ())[0] == second_pid
        engine.dispose()  # closes the reader's connection too, not only the pool's
        deadline, alive = time.monotonic() + 3, 1
        while alive and time.monotonic() < deadline:  # the backend exits just after the close
            time.sleep(0.05)
            with admin.connect() as connection:
                alive = connection.execute(
                    text("SELECT count(*) FROM pg_stat_activity WHERE pid = :pid"),
                    {"pid": second_pid},
                ).scalar_one()
        assert alive == 0
    finally:
        engine.dispose()
        admin.dispose()


def test_the_rate_limit_counts_and_resets_in_one_window(sqlite_app, sqlite_client):
    from app.auth import rate_limits

    with sqlite_app.test_request_context("/api/v1/orders"):
        states = [rate_limits.count("3 per minute", "hot", "caller") for _ in range(4)]
    assert [s.remaining for s in states] == [2, 1, 0, 0]
    assert [s.allowed for s in states] == [True, True, True, False]
    assert all(0 < s.reset_seconds <= 60 for s in states)
    assert states[-1].headers()["Retry-After"] == str(states[-1].reset_seconds)


def test_an_order_read_during_a_database_outage_is_a_503_and_recovers(make_app, redis_url,
                                                                      tmp_path):
    """The order version is read through the driver on PostgreSQL: its errors must still be a
    503 problem (never a 500), and the pool must recover once the database is back."""
    from tests.conftest import migrate
    from tests.helpers import admin_headers, create_product, merchant_with_key, order_body
    from tests.outages import OutageDatabase

    with OutageDatabase("op_hot") as database:
        migrate(database.url, redis_url, tmp_path / "migrate")
        app = make_app(database.url)
        client = app.test_client()
        _, key = merchant_with_key(client, admin_headers(app, client))
        create_product(client, key)
        order_id = client.post("/api/v1/orders", json=order_body(), headers=key).get_json()["id"]
        assert client.get(f"/api/v1/orders/{order_id}", headers=key).status_code == 200
        database.go_away()
        down = client.get(f"/api/v1/orders/{order_id}", headers=key)
        assert down.status_code == 503
        assert down.mimetype == "application/problem+json" and "Retry-After" in down.headers
        database.come_back()
        # A connection used in the last second is not pinged: at most one request per dead
        # connection fails, then the pool is rebuilt.
        deadline = time.monotonic() + 5
        back = client.get(f"/api/v1/orders/{order_id}", headers=key)
        while back.status_code != 200 and time.monotonic() < deadline:
            assert back.status_code == 503
            time.sleep(0.1)
            back = client.get(f"/api/v1/orders/{order_id}", headers=key)
        assert back.status_code == 200 and back.get_json()["id"] == order_id
