"""An RQ worker outlives a Redis outage: it waits for Redis and carries on, without a restart.

RQ itself retries a lost Redis only while it waits for a job; a failure anywhere else (a
heartbeat, a job's result, the suspension check) ends its loop and, before, the process. Redis
is a server of our own on a free port (never the shared one); the worker is a real process.
"""

import signal
import time

from tests.helpers import order_body
from tests.integration.saga_support import merchant_with_stock, wait_until_final
from tests.servers import SchedulerProcess, WorkerProcess, settings_of


def place(app, client, merchant, count):
    return [
        client.post("/api/v1/orders", json=order_body(), headers=merchant).get_json()["id"]
        for _ in range(count)
    ]


def test_a_worker_survives_redis_going_away_mid_work_and_serves_orders_after(
    make_app, sqlite_database_url, own_redis, tmp_path
):
    app = make_app(sqlite_database_url, REDIS_URL=own_redis.url, SAGA_STUCK_AFTER_SECONDS=2)
    client = app.test_client()
    merchant = merchant_with_stock(app, client, stock=100)
    # Slow payments: the worker is busy in jobs (not waiting in RQ's retrying dequeue) when
    # Redis goes, so its loop meets the outage where RQ gives up.
    settings = {**settings_of(app), "PAYMENT_SIMULATOR_LATENCY_MS": 300}
    with WorkerProcess(settings, tmp_path) as worker, \
            SchedulerProcess(settings, tmp_path) as scheduler:
        first = place(app, client, merchant, 6)
        time.sleep(1.0)
        own_redis.stop()
        time.sleep(4.0)
        assert worker.alive(), worker.log_text()
        own_redis.start()  # empty: the jobs queued before are gone (recovery's job)
        after = place(app, client, merchant, 3)
        ended = wait_until_final(app, after, timeout=30)
        assert set(ended.values()) == {("completed", None)}, worker.log_text()
        # The orders caught by the outage lost their jobs with Redis: the scheduler's
        # recovery queues them again from the database, and this same worker finishes them.
        ended = wait_until_final(app, first, timeout=60)
        assert set(ended.values()) == {("completed", None)}, worker.log_text()
        assert worker.alive()
        log = worker.log_text()
        assert "waiting for Redis" in log and "worker loop restarted" in log
        # The scheduler told the outage once, not a traceback every tick, and its end.
        told = scheduler.log_text()
        assert told.count("scheduler ticks failing: Redis is unavailable") == 1, told
        assert "scheduler ticks succeed again" in told and "Traceback" not in told, told
        # A restarted worker still stops on SIGTERM (warm shutdown), never loops again.
        worker.process.send_signal(signal.SIGTERM)
        assert worker.process.wait(timeout=15) == 0
        assert log.count("worker loop restarted") == worker.log_text().count(
            "worker loop restarted"
        )
