"""The Procfile's processes as real processes: gunicorn (2 workers), an RQ worker, the scheduler."""

import time

import requests

from tests.helpers import admin_headers, create_product, merchant_with_key, order_body
from tests.servers import GunicornServer, SchedulerProcess, WorkerProcess, settings_of


def wait_for_status(client, order_id, headers, wanted, timeout=30):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        status = client.get(f"/api/v1/orders/{order_id}", headers=headers).get_json()["status"]
        if status in wanted:
            return status
        time.sleep(0.2)
    return status


def test_gunicorn_serves_health_and_login(sqlite_app, tmp_path):
    with GunicornServer(settings_of(sqlite_app), tmp_path, workers=2) as server:
        assert requests.get(server.url + "/healthz", timeout=5).json() == {"status": "ok"}
        assert requests.get(server.url + "/readyz", timeout=5).status_code == 200
        login = requests.get(server.url + "/login", timeout=5)
        assert login.status_code == 200
        assert "csrf_token" in login.text


def test_a_worker_process_completes_an_order_placed_over_http(app, tmp_path):
    client = app.test_client()
    admin = admin_headers(app, client)
    _, merchant = merchant_with_key(client, admin)
    create_product(client, merchant, stock=3)
    with WorkerProcess(settings_of(app), tmp_path):
        order = client.post("/api/v1/orders", json=order_body(), headers=merchant).get_json()
        final = wait_for_status(client, order["id"], merchant, {"completed", "failed"})
        assert final == "completed"


def test_the_scheduler_recovers_an_order_whose_job_was_lost(app, tmp_path):
    client = app.test_client()
    admin = admin_headers(app, client)
    _, merchant = merchant_with_key(client, admin)
    create_product(client, merchant, stock=3)
    order = client.post("/api/v1/orders", json=order_body(), headers=merchant).get_json()
    app.extensions["redis"].flushdb()  # the queued job is gone, as after a Redis restart
    settings = {**settings_of(app), "SAGA_STUCK_AFTER_SECONDS": 1}
    with SchedulerProcess(settings, tmp_path), WorkerProcess(settings, tmp_path):
        final = wait_for_status(client, order["id"], merchant, {"completed", "failed"})
        assert final == "completed"


def test_a_busy_worker_keeps_heartbeating_through_a_long_job(sqlite_app, tmp_path):
    """A SimpleWorker runs the job in-process: without its heartbeat thread it would go silent
    for the whole job, and "lost" could only be told from "busy" after the job's timeout."""
    import datetime as dt

    from app.infra.queue import ALL_QUEUES
    from app.infra.queue_admin import LOST_AFTER_SECONDS, QueueAdmin
    from worker.runner import BUSY_HEARTBEAT_SECONDS

    with sqlite_app.app_context():
        queue = sqlite_app.extensions["job_queue"].queue("default")
        queue.enqueue("time.sleep", BUSY_HEARTBEAT_SECONDS + 6, job_timeout=120)
    admin = QueueAdmin(sqlite_app.extensions["redis"], sqlite_app.config["QUEUE_PREFIX"],
                       ALL_QUEUES)
    with WorkerProcess(settings_of(sqlite_app), tmp_path):
        deadline = time.monotonic() + 30
        while not any(w.current_job for w in admin.workers()):
            assert time.monotonic() < deadline, "the worker never took the job"
            time.sleep(0.2)
        started = dt.datetime.now(dt.UTC)
        time.sleep(BUSY_HEARTBEAT_SECONDS + 3)
        [worker] = admin.workers()
        assert worker.current_job and not worker.lost
        assert worker.last_heartbeat > started  # beaten during the job, not only at its start
    assert LOST_AFTER_SECONDS > 2 * BUSY_HEARTBEAT_SECONDS
