"""Fixtures of the integration tests."""

import pytest


@pytest.fixture
def own_redis(tmp_path):
    """A redis-server of this test's own (free port, never the shared one), started; the test
    may stop and start it; stopped afterwards. Skips where redis-server is not installed."""
    from tests.outages import REDIS_SERVER, OwnRedis

    if REDIS_SERVER is None:
        pytest.skip("redis-server is not installed")
    server = OwnRedis(tmp_path)
    server.start()
    yield server
    server.stop()
