"""Flags and queue pauses across real processes: gunicorn workers and a `python -m worker`."""

from __future__ import annotations

import time

import requests

from tests.helpers import order_body
from tests.servers import GunicornServer, WorkerProcess, settings_of
from tests.web.dashboard_support import place, shop


def test_the_kill_switch_reaches_every_gunicorn_worker_within_5_seconds(sqlite_app, tmp_path):
    from app.services import flags

    _, _, headers = shop(sqlite_app)
    with sqlite_app.app_context():
        flags.ensure_builtin_flags()
    with GunicornServer(settings_of(sqlite_app), tmp_path, workers=2) as server:
        url = server.url + "/api/v1/orders"
        # Both workers have read the flag (off) and cached it.
        for _ in range(6):
            assert requests.post(url, json=order_body(), headers=headers, timeout=10
                                 ).status_code == 202
        with sqlite_app.app_context():
            flags.set_flag(flags.ORDERS_KILL_SWITCH, enabled=True, reason="test")
        switched = time.monotonic()
        consecutive = 0
        while consecutive < 10:  # ten refusals in a row: every worker has it
            assert time.monotonic() - switched < 5, "a gunicorn worker still accepts orders"
            response = requests.post(url, json=order_body(), headers=headers, timeout=10)
            consecutive = consecutive + 1 if response.status_code == 503 else 0
        assert response.headers["Retry-After"]
        assert response.headers["Content-Type"].startswith("application/problem+json")


def _status(app, order_id: str) -> str:
    from app.extensions import db
    from app.services import orders

    with app.app_context():
        try:
            return orders.get_order(order_id).status
        finally:
            db.session.rollback()  # no read transaction left open: SQLite readers block writers


def _wait_completed(app, order_id: str, worker) -> None:
    deadline = time.monotonic() + 30
    while _status(app, order_id) != "completed":
        assert time.monotonic() < deadline, "not completed:\n" + worker.log_text()[-3000:]
        time.sleep(0.2)


def test_a_worker_process_stops_taking_jobs_of_a_paused_queue_and_resumes(app, tmp_path):
    from app.services import interventions
    from app.services.audit import SYSTEM

    api, _, headers = shop(app)
    with WorkerProcess(settings_of(app), tmp_path) as worker:
        _wait_completed(app, place(api, headers), worker)
        with app.app_context():
            interventions.set_queue_paused("sagas", True, SYSTEM, "test")
        time.sleep(3)  # the worker re-reads the paused set at least every 2 s
        held = place(api, headers)
        time.sleep(4)
        assert _status(app, held) == "pending"
        with app.app_context():
            assert app.extensions["job_queue"].queue("sagas").count == 1
            interventions.set_queue_paused("sagas", False, SYSTEM, "test")
        _wait_completed(app, held, worker)


def test_the_order_timeline_shows_each_webhook_delivery_attempt(sqlite_app, tmp_path):
    from tests.integration.test_webhooks import Receiver
    from tests.web.dashboard_support import staff_client

    api, _, headers = shop(sqlite_app)
    receiver = Receiver(failures=1)
    try:
        hook = api.post("/api/v1/webhooks", json={"url": receiver.url,
                                                  "events": ["order.created"]}, headers=headers)
        assert hook.status_code == 201, hook.get_json()
        order_id = place(api, headers)
        settings = {**settings_of(sqlite_app), "WEBHOOK_RETRY_BASE_SECONDS": 0.3}
        from tests.servers import SchedulerProcess

        with WorkerProcess(settings, tmp_path), SchedulerProcess(settings, tmp_path):
            deadline = time.monotonic() + 60
            while not receiver.delivered() and time.monotonic() < deadline:
                time.sleep(0.2)
    finally:
        receiver.close()
    assert receiver.delivered(), "the webhook was never delivered"
    page = staff_client(sqlite_app, "viewer").get(f"/orders/{order_id}").get_data(as_text=True)
    assert f"webhook order.created → {receiver.url} · attempt 1" in page
    assert f"webhook order.created → {receiver.url} · attempt 2" in page
    assert "endpoint answered HTTP 500" in page and "kind-webhook" in page
