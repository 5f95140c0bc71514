"""SIGKILL a real worker (the whole process group) at each step boundary: the saga still ends
completed or compensated within 60 s of a new worker being available, with one charge at most,
stock conserved and check-integrity clean.

The worker is stopped at the boundary with SAGA_PAUSE_AT (honoured only with ENV=testing); a short
saga lease and stuck threshold keep the test quick. Parametrized over the boundaries where a crash
changes what recovery must do (before a step, and after a provider answered but before the step
was recorded), on both databases.
"""

import time

import pytest

from tests.helpers import order_body
from tests.integration.saga_support import (
    integrity_problems,
    ledger,
    merchant_with_stock,
    stock_of,
    wait_until_final,
)
from tests.servers import SchedulerProcess, WorkerProcess, settings_of

BOUNDARIES = [
    ("MY", "before:reserve_inventory", "completed", {"capture": 1, "refund": 0}),
    ("MY", "after:capture_payment", "completed", {"capture": 1, "refund": 0}),
    ("MY", "after:create_shipment", "completed", {"capture": 1, "refund": 0}),
    ("MY", "before:complete", "completed", {"capture": 1, "refund": 0}),
    ("XX", "after:refund_payment", "failed", {"capture": 1, "refund": 1}),
]


def wait_for_pause(app, worker, timeout=30) -> str:
    deadline = time.monotonic() + timeout
    redis = app.extensions["redis"]
    while time.monotonic() < deadline:
        paused = redis.get(app.config["QUEUE_PREFIX"] + "saga:paused")
        if paused:
            return paused.decode()
        assert worker.alive(), worker.log_text()[-2000:]
        time.sleep(0.1)
    raise AssertionError("the worker never reached the boundary:\n" + worker.log_text()[-2000:])


@pytest.mark.slow
@pytest.mark.parametrize(("country", "point", "final", "money"), BOUNDARIES)
def test_a_worker_killed_at_a_step_boundary_is_recovered(
    app, tmp_path, country, point, final, money
):
    client = app.test_client()
    merchant = merchant_with_stock(app, client, stock=10)
    settings = {**settings_of(app), "SAGA_LEASE_SECONDS": 2, "SAGA_STUCK_AFTER_SECONDS": 1}

    doomed = WorkerProcess({**settings, "SAGA_PAUSE_AT": point}, tmp_path, name="doomed")
    order_id = client.post(
        "/api/v1/orders", json=order_body(country=country), headers=merchant
    ).get_json()["id"]
    assert wait_for_pause(app, doomed) == f"{order_id} {point}"
    doomed.kill()  # SIGKILL to the process group: no cleanup, the lease stays taken
    doomed.stop()

    started = time.monotonic()
    with WorkerProcess(settings, tmp_path, name="rescuer"), SchedulerProcess(settings, tmp_path):
        outcome = wait_until_final(app, [order_id], timeout=60)
    assert outcome[order_id][0] == final
    assert time.monotonic() - started < 60
    assert ledger(app, order_id) == money
    assert stock_of(app) == ((8, 0) if final == "completed" else (10, 0))
    assert integrity_problems(app) == []
