"""Sagas driven together (a worker draining a backlog takes several waiting saga jobs at once).

Every contract outcome in one batch ends exactly as it does alone; a crash inside a batch, a saga
leased elsewhere, a failing batch job, a worker SIGKILLed in the middle of a batch and the
database going away while a backlog drains all end with every order final, one charge at most,
stock conserved and check-integrity clean; a round's slow provider calls are made at once; only
saga jobs are taken off the queue, and queue prefixes that are not valid in job ids still work.
"""

import threading
import time

import pytest
from rq import Queue

from tests.conftest import migrate
from tests.helpers import drain_queues, order_body
from tests.integration.saga_support import (
    Interrupted,
    event_types,
    integrity_problems,
    ledger,
    merchant_with_stock,
    saga_context,
    statuses,
    stock_of,
    wait_until_final,
)
from tests.integration.test_saga_failure_paths import CASES
from tests.integration.test_saga_kill import wait_for_pause
from tests.outages import OutageDatabase
from tests.servers import SchedulerProcess, WorkerProcess, settings_of

STOCK = 100


def _body(case: str) -> dict:
    if case == "not_enough_stock":  # more than the whole (bigger) stock of this test
        return order_body(items=[{"sku": "SKU-1", "quantity": STOCK + 1}])
    return CASES[case]["body"]


def _place(client, merchant, bodies) -> list[str]:
    ids = []
    for body in bodies:
        placed = client.post("/api/v1/orders", json=body, headers=merchant)
        assert placed.status_code == 202, placed.get_json()
        ids.append(placed.get_json()["id"])
    return ids


def test_every_contract_outcome_in_one_batch_ends_as_it_does_alone(app, client):
    merchant = merchant_with_stock(app, client, stock=STOCK)
    order_ids = dict(zip(CASES, _place(client, merchant, [_body(c) for c in CASES]), strict=True))
    saga_queue = Queue(app.config["QUEUE_PREFIX"] + "sagas", connection=app.extensions["redis"])
    assert saga_queue.count == len(CASES)

    drain_queues(app)

    # The first job took every other waiting saga: one job ran, the queue is empty.
    assert saga_queue.count == 0
    assert saga_queue.finished_job_registry.count == 1
    for case, order_id in order_ids.items():
        expected = CASES[case]
        order = client.get(f"/api/v1/orders/{order_id}", headers=merchant).get_json()
        assert (order["status"], order["failure_reason"]) == expected["outcome"], case
        assert event_types(client, merchant, order_id) == expected["events"], case
        assert ledger(app, order_id) == expected["ledger"], case
    completed = sum(1 for case in CASES if CASES[case]["outcome"][0] == "completed")
    assert stock_of(app) == (STOCK - 2 * completed, 0)
    assert integrity_problems(app) == []


class _CountingPayments:
    """The payment simulator, counting how many captures are in flight at once."""

    def __init__(self, inner):
        self.inner, self.in_flight, self.most = inner, 0, 0
        self.lock = threading.Lock()

    def capture(self, **call):
        with self.lock:
            self.in_flight += 1
            self.most = max(self.most, self.in_flight)
        try:
            time.sleep(0.05)  # a provider's network time: calls made one by one never overlap
            return self.inner.capture(**call)
        finally:
            with self.lock:
                self.in_flight -= 1

    def __getattr__(self, name):
        return getattr(self.inner, name)


def test_a_rounds_slow_provider_calls_are_made_at_once(app, client):
    from app.extensions import db
    from app.services.saga_batch import drive_sagas

    merchant = merchant_with_stock(app, client, stock=STOCK)
    order_ids = _place(client, merchant, [order_body() for _ in range(6)])
    payments = _CountingPayments(app.extensions["payment_provider"])
    with app.app_context():
        runs = drive_sagas(order_ids, saga_context(app, payments=payments))
        postgresql = db.engine.dialect.name == "postgresql"
        db.session.remove()

    assert {run.status for run in runs.values()} == {"completed"}
    # PostgreSQL: the round's first capture turns out slow, so the other five go at once.
    # SQLite runs a batch's sagas one by one.
    assert payments.most == (5 if postgresql else 1)
    assert all(ledger(app, order_id)["capture"] == 1 for order_id in order_ids)


def test_an_order_cancelled_while_it_waits_in_a_backlog_ends_cancelled_and_the_rest_complete(
    app, client, caplog
):
    merchant = merchant_with_stock(app, client, stock=STOCK)
    order_ids = _place(client, merchant, [order_body() for _ in range(4)])
    cancelled = client.post(f"/api/v1/orders/{order_ids[2]}/cancel", headers=merchant)
    assert cancelled.status_code in (200, 202), cancelled.get_json()

    drain_queues(app)

    # The cancel queued the saga's job a second time: one batch takes both, and drives the saga
    # once (twice would trip over its own ending: the batch would stop and log a traceback).
    assert "saga batch stopped" not in caplog.text

    expected = dict.fromkeys(order_ids, ("completed", None))
    expected[order_ids[2]] = ("cancelled", None)
    assert statuses(app, order_ids) == expected
    assert ledger(app, order_ids[2]) == {"capture": 0, "refund": 0}
    assert stock_of(app) == (STOCK - 6, 0)
    assert integrity_problems(app) == []


def test_a_batch_short_of_stock_serves_its_orders_in_turn_and_never_oversells(app, client):
    from app.extensions import db
    from app.services.saga_batch import drive_sagas

    merchant = merchant_with_stock(app, client, stock=10)
    order_ids = _place(client, merchant, [order_body() for _ in range(7)])  # 2 units each
    with app.app_context():
        runs = drive_sagas(order_ids, saga_context(app))
        db.session.remove()

    # The batch cannot reserve all 14 units at once, so the orders reserve one by one.
    assert [runs[order_id].status for order_id in order_ids] == ["completed"] * 5 + ["failed"] * 2
    assert statuses(app, order_ids[5:]) == dict.fromkeys(order_ids[5:], ("failed", "out_of_stock"))
    assert stock_of(app) == (0, 0)
    assert integrity_problems(app) == []


def test_an_order_completed_in_a_batch_never_answers_a_stale_etag(app, client):
    from app.extensions import db
    from app.services.saga_batch import drive_sagas

    merchant = merchant_with_stock(app, client, stock=STOCK)
    order_ids = _place(client, merchant, [order_body() for _ in range(3)])
    watched = order_ids[1]
    mid_saga = []

    def read_mid_saga(order_id, reached):
        # Round 2 holds the rows without a new version (the lease is fresh): read the order then.
        if order_id == watched and reached == "before:create_shipment":
            mid_saga.append(client.get(f"/api/v1/orders/{watched}", headers=merchant))

    with app.app_context():
        drive_sagas(order_ids, saga_context(app, on_boundary=read_mid_saga))
        db.session.remove()

    (seen,) = mid_saga
    assert seen.get_json()["status"] == "processing"
    again = client.get(
        f"/api/v1/orders/{watched}", headers={**merchant, "If-None-Match": seen.headers["ETag"]}
    )
    assert again.status_code == 200 and again.get_json()["status"] == "completed"
    assert again.headers["ETag"] != seen.headers["ETag"]


def test_each_sagas_log_lines_name_its_own_order_and_request(app, client):
    from app.extensions import db
    from app.observability.logs import current_log_fields, current_request_id
    from app.services.saga_batch import drive_sagas

    merchant = merchant_with_stock(app, client, stock=STOCK)
    order_ids = _place(client, merchant, [order_body() for _ in range(3)])
    seen = []

    def note_log_context(order_id, reached):
        fields = current_log_fields.get() or {}
        seen.append((order_id, fields.get("order_id"), current_request_id.get()))

    # As a worker runs it: the job's log context is the leading order's.
    current_log_fields.set({"order_id": order_ids[0]})
    try:
        with app.app_context():
            from app.infra.models import Order

            request_ids = {o.id: o.request_id for o in db.session.query(Order)}
            drive_sagas(order_ids, saga_context(app, on_boundary=note_log_context))
            db.session.remove()
        assert current_log_fields.get() == {"order_id": order_ids[0]}  # the job's again
    finally:
        current_log_fields.set(None)

    assert {order_id for order_id, _, _ in seen} == set(order_ids)
    for order_id, logged_order, logged_request in seen:
        assert logged_order == order_id
        assert logged_request == request_ids[order_id] and logged_request


def test_a_batch_jobs_log_lines_carry_each_orders_own_request_id(app, client):
    """The contract: a request's id is in the logs of the worker jobs it caused - also when
    another request's job drove its saga in a batch."""
    import json
    import logging

    from app.observability.logs import JsonFormatter

    merchant = merchant_with_stock(app, client, stock=STOCK)
    request_ids = {}
    for i in range(4):
        placed = client.post("/api/v1/orders", json=order_body(),
                             headers={**merchant, "X-Request-ID": f"req-batch-{i}"})
        request_ids[placed.get_json()["id"]] = f"req-batch-{i}"
    lines: list[dict] = []

    class Capture(logging.Handler):
        def emit(self, record):
            lines.append(json.loads(JsonFormatter().format(record)))

    root, handler = logging.getLogger(), Capture(level=logging.INFO)
    level = root.level
    root.addHandler(handler)
    root.setLevel(logging.INFO)
    try:
        drain_queues(app)
    finally:
        root.removeHandler(handler)
        root.setLevel(level)

    finished = {line["order_id"]: line.get("request_id") for line in lines
                if line["message"] == "saga run finished"}
    assert finished == request_ids
    about_orders = [line for line in lines if line.get("order_id") in request_ids]
    assert about_orders
    for line in about_orders:
        assert line.get("request_id") == request_ids[line["order_id"]], line


def db_is_postgresql(app) -> bool:
    return app.config["DATABASE_URL"].startswith("postgresql")


def test_a_crash_inside_a_batch_rolls_its_round_back_and_every_saga_still_finishes(app, client):
    from app.extensions import db
    from app.services.saga_batch import drive_sagas

    merchant = merchant_with_stock(app, client, stock=STOCK)
    order_ids = _place(client, merchant, [order_body() for _ in range(4)])
    crashed = []

    def crash_once(order_id, reached):
        # The third saga "dies" after the provider charged it, before anything recorded that.
        if order_id == order_ids[2] and reached == "after:capture_payment" and not crashed:
            crashed.append(order_id)
            raise Interrupted(reached)

    ctx = saga_context(app, on_boundary=crash_once)
    with app.app_context():
        try:
            runs = drive_sagas(order_ids, ctx)
        except Interrupted:
            # SQLite drives a batch's sagas one by one: the crash ends that saga's run (after the
            # others ran) as it would end a job; the job's retry drives it again.
            assert db.engine.dialect.name == "sqlite"
            runs = drive_sagas(order_ids, ctx)
        db.session.remove()

    assert crashed
    assert {order_id: run.status for order_id, run in runs.items()} == dict.fromkeys(
        order_ids, "completed"
    )
    for order_id in order_ids:
        assert ledger(app, order_id) == {"capture": 1, "refund": 0}  # the retry was idempotent
        assert event_types(client, merchant, order_id)[-1] == "order.completed"
    assert stock_of(app) == (STOCK - 8, 0)
    assert integrity_problems(app) == []


class _BrokenFor:
    """The payment simulator, failing with an unexpected error for one order, `times` times."""

    def __init__(self, inner, order_id: str, times: int):
        self.inner, self.order_id, self.left = inner, order_id, times

    def capture(self, **call):
        if call["order_id"] == self.order_id and self.left > 0:
            self.left -= 1
            raise RuntimeError("provider adapter bug")
        return self.inner.capture(**call)

    def __getattr__(self, name):
        return getattr(self.inner, name)


def test_a_batch_job_that_fails_queues_its_taken_sagas_again(app, client):
    merchant = merchant_with_stock(app, client, stock=STOCK)
    order_ids = _place(client, merchant, [order_body() for _ in range(6)])
    # Fails in the batch and again when that saga is then driven alone (SQLite drives it alone
    # only): the job fails, after the other sagas finished.
    app.extensions["payment_provider"] = _BrokenFor(
        app.extensions["payment_provider"], order_ids[3], times=2 if db_is_postgresql(app) else 1
    )
    saga_queue = Queue(app.config["QUEUE_PREFIX"] + "sagas", connection=app.extensions["redis"])

    drain_queues(app)  # the failed job's taken sagas were queued again and ran in the same drain

    assert saga_queue.failed_job_registry.count == 1
    assert statuses(app, order_ids) == dict.fromkeys(order_ids, ("completed", None))
    assert all(ledger(app, order_id) == {"capture": 1, "refund": 0} for order_id in order_ids)
    assert stock_of(app) == (STOCK - 12, 0)
    assert integrity_problems(app) == []


def test_a_saga_leased_by_another_worker_is_left_alone_by_a_batch(app, client):
    import datetime as dt

    from sqlalchemy import update

    from app.extensions import db
    from app.infra.models import Order
    from app.infra.models.base import utcnow
    from app.services.saga_batch import drive_sagas

    merchant = merchant_with_stock(app, client, stock=STOCK)
    free, taken = _place(client, merchant, [order_body(), order_body()])
    with app.app_context():
        db.session.execute(
            update(Order)
            .where(Order.id == taken)
            .values(lease_owner="elsewhere", lease_expires_at=utcnow() + dt.timedelta(minutes=5))
        )
        db.session.commit()
        runs = drive_sagas([free, taken], saga_context(app))
        db.session.remove()

    assert (runs[free].status, runs[taken].status) == ("completed", "busy")
    assert statuses(app, [taken])[taken] == ("pending", None)
    assert ledger(app, taken) == {"capture": 0, "refund": 0}


def test_only_saga_jobs_at_the_front_of_the_queue_are_taken(app):
    from app.infra.queue import RUN_ORDER_SAGA, SAGA_QUEUE, RqJobQueue

    redis = app.extensions["redis"]
    # A prefix with characters job ids may not hold (RQ allows letters, digits, "_" and "-").
    jobs = RqJobQueue(redis, prefix=app.config["QUEUE_PREFIX"] + "x:")
    jobs.enqueue_sagas(["ord_a", "ord_b"])
    jobs.queue(SAGA_QUEUE).enqueue(RUN_ORDER_SAGA, "ord_c")  # an id of RQ's own choosing
    jobs.enqueue_sagas(["ord_d"])

    assert jobs.adopt_waiting_sagas(5) == ["ord_a", "ord_b"]
    assert redis.exists(f"rq:job:{jobs.saga_job_id('ord_a')}") == 0  # taken jobs are gone
    assert jobs.queue(SAGA_QUEUE).count == 2  # ord_c and ord_d wait for a worker
    # A taken saga can be queued again (the recovery's de-duplication does not see a ghost).
    assert jobs.enqueue_sagas(["ord_a"]) == 1
    # A batch that took one saga twice (queued again by a cancel) re-queues it once, not never:
    # RQ's enqueue_many refuses a batch naming a job id twice.
    assert jobs.enqueue_sagas(["ord_e", "ord_e", "ord_f"]) == 2


@pytest.mark.slow
@pytest.mark.parametrize("point", ["after:capture_payment", "before:complete"])
def test_a_worker_killed_in_the_middle_of_a_batch_is_recovered(app, tmp_path, point):
    client = app.test_client()
    merchant = merchant_with_stock(app, client, stock=10)
    settings = {**settings_of(app), "SAGA_LEASE_SECONDS": 2, "SAGA_STUCK_AFTER_SECONDS": 1}
    # A backlog first: the doomed worker's first job takes all four.
    order_ids = _place(client, merchant, [order_body() for _ in range(4)])

    doomed = WorkerProcess({**settings, "SAGA_PAUSE_AT": point}, tmp_path, name="doomed")
    assert wait_for_pause(app, doomed).endswith(point)
    doomed.kill()  # SIGKILL to the process group: the taken jobs are gone from Redis with it
    doomed.stop()

    started = time.monotonic()
    with WorkerProcess(settings, tmp_path, name="rescuer"), SchedulerProcess(settings, tmp_path):
        outcome = wait_until_final(app, order_ids, timeout=60)
    assert {status for status, _ in outcome.values()} == {"completed"}
    assert time.monotonic() - started < 60
    for order_id in order_ids:
        assert ledger(app, order_id) == {"capture": 1, "refund": 0}
    assert stock_of(app) == (2, 0)
    assert integrity_problems(app) == []


@pytest.mark.slow
def test_the_database_going_away_while_a_backlog_drains_loses_no_order(
    make_app, redis_url, tmp_path
):
    from app.extensions import db

    with OutageDatabase() as database:
        migrate(database.url, redis_url, tmp_path / "migrate")
        app = make_app(database.url)
        client = app.test_client()
        merchant = merchant_with_stock(app, client, stock=STOCK)
        order_ids = _place(client, merchant, [order_body() for _ in range(24)])
        settings = {
            **settings_of(app),
            "SAGA_BATCH_SIZE": 4,  # several batches, so one is in flight when the database goes
            "SAGA_LEASE_SECONDS": 2,
            "SAGA_STUCK_AFTER_SECONDS": 1,
            "PAYMENT_SIMULATOR_LATENCY_MS": 100,
        }
        with WorkerProcess(settings, tmp_path) as worker, SchedulerProcess(settings, tmp_path):
            deadline = time.monotonic() + 30
            while not any(s == "completed" for s, _ in statuses(app, order_ids).values()):
                assert time.monotonic() < deadline, worker.log_text()[-2000:]
                time.sleep(0.05)
            database.go_away()  # for two seconds
            time.sleep(2)
            database.come_back()
            with app.app_context():
                db.engine.dispose()  # this process's connections died too
            final = wait_until_final(app, order_ids, timeout=60)
        assert set(final.values()) == {("completed", None)}, worker.log_text()[-2000:]
        assert all(ledger(app, order_id) == {"capture": 1, "refund": 0} for order_id in order_ids)
        assert stock_of(app) == (STOCK - 2 * len(order_ids), 0)
        assert integrity_problems(app) == []
