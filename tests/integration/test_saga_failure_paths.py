"""Every row of the contract's saga table, on SQLite and PostgreSQL, through a real RQ worker.

Each ends with the right status, failure reason, timeline, stock and provider ledger, and a clean
integrity check."""

import pytest
from sqlalchemy import select

from tests.helpers import drain_queues, order_body
from tests.integration.saga_support import (
    event_types,
    integrity_problems,
    ledger,
    merchant_with_stock,
    stock_of,
)

CREATED, RESERVED, RELEASED = "order.created", "inventory.reserved", "inventory.released"

CASES = {
    "tok_visa": dict(
        body=order_body(),
        outcome=("completed", None),
        events=[CREATED, RESERVED, "payment.captured", "shipment.created", "order.completed"],
        stock=(8, 0),
        ledger={"capture": 1, "refund": 0},
    ),
    "tok_chargeDeclined": dict(
        body=order_body(token="tok_chargeDeclined"),
        outcome=("failed", "payment_declined"),
        events=[CREATED, RESERVED, "payment.declined", RELEASED, "order.failed"],
        stock=(10, 0),
        ledger={"capture": 0, "refund": 0},
    ),
    "tok_processingError": dict(
        body=order_body(token="tok_processingError"),
        outcome=("failed", "payment_error"),
        events=[CREATED, RESERVED, "payment.failed", RELEASED, "order.failed"],
        stock=(10, 0),
        ledger={"capture": 0, "refund": 0},
    ),
    "tok_flaky": dict(
        body=order_body(token="tok_flaky"),
        outcome=("completed", None),
        events=[CREATED, RESERVED, "payment.captured", "shipment.created", "order.completed"],
        stock=(8, 0),
        ledger={"capture": 1, "refund": 0},
    ),
    "country_XX": dict(
        body=order_body(country="XX"),
        outcome=("failed", "shipment_failed"),
        events=[
            CREATED,
            RESERVED,
            "payment.captured",
            "shipment.failed",
            "payment.refunded",
            RELEASED,
            "order.failed",
        ],
        stock=(10, 0),
        ledger={"capture": 1, "refund": 1},
    ),
    "not_enough_stock": dict(
        body=order_body(items=[{"sku": "SKU-1", "quantity": 11}]),
        outcome=("failed", "out_of_stock"),
        events=[CREATED, "inventory.insufficient", "order.failed"],
        stock=(10, 0),
        ledger={"capture": 0, "refund": 0},
    ),
    "tok_fraudulent": dict(
        body=order_body(token="tok_fraudulent"),
        outcome=("failed", "fraud_suspected"),
        events=[CREATED, RESERVED, "payment.declined", RELEASED, "order.failed"],
        stock=(10, 0),
        ledger={"capture": 0, "refund": 0},
    ),
}


@pytest.mark.parametrize("case", list(CASES))
def test_each_contract_outcome_ends_with_the_right_status_events_stock_and_money(
    app, client, case
):
    expected = CASES[case]
    merchant = merchant_with_stock(app, client, stock=10)
    placed = client.post("/api/v1/orders", json=expected["body"], headers=merchant)
    assert placed.status_code == 202
    order_id = placed.get_json()["id"]

    drain_queues(app)

    order = client.get(f"/api/v1/orders/{order_id}", headers=merchant).get_json()
    assert (order["status"], order["failure_reason"]) == expected["outcome"]
    assert event_types(client, merchant, order_id) == expected["events"]
    assert stock_of(app) == expected["stock"]
    assert ledger(app, order_id) == expected["ledger"]
    assert integrity_problems(app) == []


def _attempts(app, order_id):
    from app.extensions import db
    from app.infra.models import SagaStepAttempt

    with app.app_context():
        rows = db.session.scalars(
            select(SagaStepAttempt)
            .where(SagaStepAttempt.order_id == order_id)
            .order_by(SagaStepAttempt.seq)
        ).all()
        return [(a.step, a.kind, a.outcome, a.duration_ms >= 0, bool(a.error)) for a in rows]


def test_a_processing_error_is_retried_to_the_policy_maximum_then_compensated(app, client):
    from app.domain.saga import STEP_BY_NAME

    merchant = merchant_with_stock(app, client)
    order_id = client.post(
        "/api/v1/orders", json=order_body(token="tok_processingError"), headers=merchant
    ).get_json()["id"]
    drain_queues(app)
    attempts = _attempts(app, order_id)
    tries = STEP_BY_NAME["capture_payment"].retry.max_attempts
    assert attempts == [
        ("reserve_inventory", "action", "succeeded", True, False),
        *[("capture_payment", "action", "retryable_error", True, True)] * tries,
        ("release_inventory", "compensation", "succeeded", True, False),
    ]


def test_a_declined_card_is_never_retried_and_out_of_stock_never_reaches_the_provider(
    app, client
):
    merchant = merchant_with_stock(app, client, stock=2)
    declined = client.post(
        "/api/v1/orders", json=order_body(token="tok_chargeDeclined"), headers=merchant
    ).get_json()["id"]
    too_many = client.post(
        "/api/v1/orders", json=order_body(items=[{"sku": "SKU-1", "quantity": 3}]), headers=merchant
    ).get_json()["id"]
    drain_queues(app)
    assert [a[:3] for a in _attempts(app, declined)] == [
        ("reserve_inventory", "action", "succeeded"),
        ("capture_payment", "action", "failed"),
        ("release_inventory", "compensation", "succeeded"),
    ]
    assert [a[:3] for a in _attempts(app, too_many)] == [
        ("reserve_inventory", "action", "failed"),
    ]


def test_a_flaky_payment_succeeds_on_the_second_try_with_one_charge(app, client):
    merchant = merchant_with_stock(app, client)
    order_id = client.post(
        "/api/v1/orders", json=order_body(token="tok_flaky"), headers=merchant
    ).get_json()["id"]
    drain_queues(app)
    outcomes = [a[2] for a in _attempts(app, order_id) if a[0] == "capture_payment"]
    assert outcomes == ["retryable_error", "succeeded"]
    assert ledger(app, order_id) == {"capture": 1, "refund": 0}


def test_a_multi_line_order_reserves_every_line_or_none(app, client):
    from tests.helpers import create_product

    merchant = merchant_with_stock(app, client, stock=5, sku="SKU-1")
    create_product(client, merchant, sku="SKU-2", stock=1)
    lines = [{"sku": "SKU-1", "quantity": 2}, {"sku": "SKU-2", "quantity": 2}]
    short = client.post("/api/v1/orders", json=order_body(items=lines), headers=merchant)
    drain_queues(app)
    final = client.get(f"/api/v1/orders/{short.get_json()['id']}", headers=merchant).get_json()
    assert (final["status"], final["failure_reason"]) == ("failed", "out_of_stock")
    # The first line's reservation rolled back with the second's failure.
    assert stock_of(app, "SKU-1") == (5, 0)
    assert stock_of(app, "SKU-2") == (1, 0)
    assert integrity_problems(app) == []
