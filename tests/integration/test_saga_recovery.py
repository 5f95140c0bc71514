"""Recovery from the database: Redis flushed with sagas in flight loses none of them, and two
schedulers started together act as one."""

import time

import pytest

from tests.helpers import order_body
from tests.integration.saga_support import (
    integrity_problems,
    ledger,
    merchant_with_stock,
    statuses,
    wait_until_final,
)
from tests.servers import SchedulerProcess, WorkerProcess, settings_of


@pytest.mark.slow
def test_redis_flushed_while_orders_are_in_flight_loses_none_of_them(app, tmp_path):
    client = app.test_client()
    merchant = merchant_with_stock(app, client, stock=100)
    settings = {
        **settings_of(app),
        "SAGA_LEASE_SECONDS": 2,
        "SAGA_STUCK_AFTER_SECONDS": 1,
        "PAYMENT_SIMULATOR_LATENCY_MS": 100,
    }
    ids = [
        client.post("/api/v1/orders", json=order_body(), headers=merchant).get_json()["id"]
        for _ in range(15)
    ]
    with WorkerProcess(settings, tmp_path) as worker:
        deadline = time.monotonic() + 30
        while not any(s == "completed" for s, _ in statuses(app, ids).values()):
            assert time.monotonic() < deadline, worker.log_text()[-2000:]
            time.sleep(0.05)
        app.extensions["redis"].flushdb()  # a Redis restart that lost its data: queued jobs gone
        with SchedulerProcess(settings, tmp_path, name="a"), SchedulerProcess(
            settings, tmp_path, name="b"
        ):
            final = wait_until_final(app, ids, timeout=60)
    assert set(final.values()) == {("completed", None)}
    assert all(ledger(app, order_id) == {"capture": 1, "refund": 0} for order_id in ids)
    assert integrity_problems(app) == []


def test_two_schedulers_share_one_leader_and_only_it_requeues(app, client, caplog):
    from app.infra.queue import SAGA_QUEUE
    from worker.scheduler import Scheduler

    merchant = merchant_with_stock(app, client, stock=10)
    order_id = client.post("/api/v1/orders", json=order_body(), headers=merchant).get_json()["id"]
    redis = app.extensions["redis"]
    redis.flushdb()
    app.config["SAGA_STUCK_AFTER_SECONDS"] = 0
    first, second = Scheduler(app, 1), Scheduler(app, 1)
    assert first.is_leader() and not second.is_leader()
    queue = app.extensions["job_queue"].queue(SAGA_QUEUE)
    second.tick()
    assert queue.count == 0  # the follower did nothing
    first.tick()
    first.tick()  # the recovery job is deduplicated while it waits
    assert queue.job_ids == [f"saga-{order_id}"]
    redis.delete(first.key)  # the leader died: its lease lapses
    assert second.is_leader() and not first.is_leader()
    # Each says which it is, when that changes (not on every tick).
    caplog.clear()
    with caplog.at_level("INFO", logger="worker.scheduler"):
        second.tick()
        second.tick()
        first.tick()
        second.release()
    said = [r.getMessage() for r in caplog.records if r.name == "worker.scheduler"]
    assert said.count("scheduler leads: it runs the periodic jobs") == 1
    assert any(m.startswith("scheduler on standby") for m in said)
    assert any(m.startswith("scheduler stopped leading") for m in said)


def test_a_dead_workers_orders_come_first_even_behind_a_larger_backlog(app, client):
    """A backlog's waiting orders are older than a killed worker's: each pass takes at most
    RECOVERY_BATCH, and the killed worker's (lapsed lease) must be in the first one."""
    import datetime as dt

    from sqlalchemy import update

    from app.extensions import db
    from app.infra.models import Order
    from app.infra.models.base import utcnow
    from app.services.recovery import stuck_order_ids

    merchant = merchant_with_stock(app, client, stock=100)
    ids = [client.post("/api/v1/orders", json=order_body(), headers=merchant).get_json()["id"]
           for _ in range(4)]
    backlog, held_by_the_dead = ids[:3], ids[3]
    now = utcnow()
    with app.app_context():
        for age, order_id in enumerate(backlog):  # waiting in the queue, never claimed
            db.session.execute(update(Order).where(Order.id == order_id).values(
                updated_at=now - dt.timedelta(minutes=10 - age)))
        db.session.execute(update(Order).where(Order.id == held_by_the_dead).values(
            status="processing", lease_owner="killed-worker",
            lease_expires_at=now - dt.timedelta(seconds=5),
            updated_at=now - dt.timedelta(minutes=1)))
        db.session.commit()
        assert stuck_order_ids(30, limit=2) == [held_by_the_dead, backlog[0]]
        assert stuck_order_ids(30) == [held_by_the_dead, *backlog]
