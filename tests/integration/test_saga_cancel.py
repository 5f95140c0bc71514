"""Cancellation stops the saga at the next step boundary and compensates what was done; a cancel
racing completion has exactly one winner."""

import random
import threading
import time

import pytest

from tests.helpers import drain_queues, order_body
from tests.integration.saga_support import (
    event_types,
    integrity_problems,
    ledger,
    merchant_with_stock,
    run_saga_inline,
    stock_of,
    wait_until_final,
)
from tests.servers import WorkerProcess, settings_of


def cancel_when(app, point, headers, answers):
    """A boundary hook that cancels the order over the API when the saga reaches `point`."""

    def hook(order_id, reached):
        if reached == point and not answers:
            from app.extensions import db

            db.session.commit()  # a boundary holds no pending work; free SQLite's write lock
            answers.append(
                app.test_client().post(f"/api/v1/orders/{order_id}/cancel", headers=headers)
            )

    return hook


@pytest.mark.parametrize(
    ("point", "money", "undone"),
    [
        ("before:capture_payment", {"capture": 0, "refund": 0}, ["inventory.released"]),
        (
            "before:create_shipment",
            {"capture": 1, "refund": 1},
            ["payment.refunded", "inventory.released"],
        ),
        (
            "before:complete",
            {"capture": 1, "refund": 1},
            ["shipment.cancelled", "payment.refunded", "inventory.released"],
        ),
    ],
)
def test_a_cancel_stops_the_saga_at_the_next_boundary_and_compensates_newest_first(
    app, client, point, money, undone
):
    merchant = merchant_with_stock(app, client, stock=10)
    order_id = client.post("/api/v1/orders", json=order_body(), headers=merchant).get_json()["id"]
    answers = []
    assert run_saga_inline(app, order_id, on_boundary=cancel_when(app, point, merchant, answers))
    assert answers[0].status_code == 202

    order = client.get(f"/api/v1/orders/{order_id}", headers=merchant).get_json()
    assert (order["status"], order["failure_reason"]) == ("cancelled", None)
    assert ledger(app, order_id) == money
    assert stock_of(app) == (10, 0)
    events = event_types(client, merchant, order_id)
    assert "order.cancel_requested" in events
    assert events[-len(undone) - 1 :] == [*undone, "order.cancelled"]
    assert "order.completed" not in events
    assert integrity_problems(app) == []


def test_a_cancel_accepted_while_a_refused_shipment_is_undone_ends_cancelled(app, client):
    """The cancel lands after create_shipment failed but before the order is final: the API said
    202, so the order ends cancelled (not failed), with the same compensation."""
    merchant = merchant_with_stock(app, client, stock=10)
    body = order_body(country="XX")
    order_id = client.post("/api/v1/orders", json=body, headers=merchant).get_json()["id"]
    answers = []
    hook = cancel_when(app, "before:refund_payment", merchant, answers)
    assert run_saga_inline(app, order_id, on_boundary=hook)
    assert answers[0].status_code == 202

    order = client.get(f"/api/v1/orders/{order_id}", headers=merchant).get_json()
    assert (order["status"], order["failure_reason"]) == ("cancelled", None)
    assert ledger(app, order_id) == {"capture": 1, "refund": 1}
    assert stock_of(app) == (10, 0)
    events = event_types(client, merchant, order_id)
    assert events[-3:] == ["payment.refunded", "inventory.released", "order.cancelled"]
    assert "order.failed" not in events
    assert integrity_problems(app) == []


def test_a_pending_order_cancelled_before_any_worker_runs_is_never_charged(app, client):
    merchant = merchant_with_stock(app, client, stock=10)
    order_id = client.post("/api/v1/orders", json=order_body(), headers=merchant).get_json()["id"]
    assert client.post(f"/api/v1/orders/{order_id}/cancel", headers=merchant).status_code == 202
    drain_queues(app)
    assert client.get(f"/api/v1/orders/{order_id}", headers=merchant).get_json()["status"] == (
        "cancelled"
    )
    assert ledger(app, order_id) == {"capture": 0, "refund": 0}
    assert stock_of(app) == (10, 0)


def test_a_completed_order_cannot_be_cancelled(app, client):
    merchant = merchant_with_stock(app, client, stock=10)
    order_id = client.post("/api/v1/orders", json=order_body(), headers=merchant).get_json()["id"]
    drain_queues(app)
    refused = client.post(f"/api/v1/orders/{order_id}/cancel", headers=merchant)
    assert refused.status_code == 409
    assert refused.content_type == "application/problem+json"
    assert ledger(app, order_id) == {"capture": 1, "refund": 0}


def test_cancels_racing_a_real_worker_have_one_winner_per_order(app, tmp_path):
    client = app.test_client()
    merchant = merchant_with_stock(app, client, stock=100)
    ids = [
        client.post("/api/v1/orders", json=order_body(), headers=merchant).get_json()["id"]
        for _ in range(12)
    ]
    answers: dict[str, int] = {}
    rng = random.Random(4)

    def cancel(order_id, delay):
        time.sleep(delay)
        answers[order_id] = (
            app.test_client()
            .post(f"/api/v1/orders/{order_id}/cancel", headers=merchant)
            .status_code
        )

    settings = {**settings_of(app), "PAYMENT_SIMULATOR_LATENCY_MS": 40}
    with WorkerProcess(settings, tmp_path):
        threads = [
            threading.Thread(target=cancel, args=(oid, rng.uniform(0.5, 2.5))) for oid in ids
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        final = wait_until_final(app, ids)

    for order_id in ids:
        status, _ = final[order_id]
        money = ledger(app, order_id)
        if answers[order_id] == 409:
            assert (status, money) == ("completed", {"capture": 1, "refund": 0})
        else:
            assert answers[order_id] == 202
            assert status == "cancelled"
            assert money["capture"] == money["refund"] <= 1
    assert {a for a in answers.values()} <= {202, 409}
    assert integrity_problems(app) == []
