"""The plumbing the API's hot paths rely on: buffered SLO counts, idle-connection pings, and the
rate limit's single round trip."""

from __future__ import annotations

import time

from sqlalchemy import create_engine, text

from app.domain.slo import API_AVAILABILITY, Counts
from app.infra.database import IDLE_PING_SECONDS, engine_options, ping_idle_connections
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


def test_the_rate_limit_counts_and_resets_in_one_window(sqlite_app, sqlite_client):
    from app.auth import rate_limits

    with sqlite_app.test_request_context("/api/v1/orders"):
        states = [rate_limits.count("3 per minute", "hot", "caller") for _ in range(4)]
    assert [s.remaining for s in states] == [2, 1, 0, 0]
    assert [s.allowed for s in states] == [True, True, True, False]
    assert all(0 < s.reset_seconds <= 60 for s in states)
    assert states[-1].headers()["Retry-After"] == str(states[-1].reset_seconds)
