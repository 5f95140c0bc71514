"""The per-provider circuit breaker: shared through Redis, opened by transient failures only,
failing fast while open, one trial call when half-open, and observable."""

import time

import pytest
from sqlalchemy import select

from app.domain.errors import PaymentDeclined, TransientError
from tests.helpers import drain_queues, order_body
from tests.integration.saga_support import (
    ledger,
    merchant_with_stock,
    run_saga_inline,
    statuses,
    stock_of,
)


def breaker(app, name="payments", threshold=3, cooldown=0.3):
    from app.infra.circuit_breaker import BreakerSettings, CircuitBreaker

    settings = BreakerSettings(
        failure_threshold=threshold, window_seconds=30, cooldown_seconds=cooldown
    )
    return CircuitBreaker(app.extensions["redis"], name, lambda: settings)


def fail():
    raise TransientError("provider timeout")


def test_transient_failures_open_the_circuit_which_fails_fast_then_recovers(sqlite_app):
    from app.infra.circuit_breaker import CircuitOpen

    cb = breaker(sqlite_app)
    calls = []
    for _ in range(3):
        with pytest.raises(TransientError):
            cb.call(fail)
    assert cb.state() == "open"
    with pytest.raises(CircuitOpen):
        cb.call(lambda: calls.append("reached"))
    assert calls == []  # the provider was not called while open
    # Another process (a second breaker object on the same Redis) sees the same state.
    assert breaker(sqlite_app).state() == "open"

    time.sleep(0.35)
    assert cb.state() == "half_open"
    with pytest.raises(TransientError):
        cb.call(fail)  # the trial failed: open again
    assert cb.state() == "open"
    time.sleep(0.35)
    assert cb.call(lambda: "ok") == "ok"  # the trial succeeded: closed
    assert cb.state() == "closed"


def test_business_answers_never_open_the_circuit(sqlite_app):
    cb = breaker(sqlite_app, threshold=2)

    def decline():
        raise PaymentDeclined()

    for _ in range(5):
        with pytest.raises(PaymentDeclined):
            cb.call(decline)
    assert cb.state() == "closed"


def test_circuit_states_reports_every_provider_for_dashboards_and_metrics(sqlite_app):
    from app.infra.circuit_breaker import circuit_states

    cb = breaker(sqlite_app, name="shipping", threshold=5)
    with pytest.raises(TransientError):
        cb.call(fail)
    reported = circuit_states(sqlite_app.extensions["redis"], sqlite_app.config)
    states = {s["provider"]: s for s in reported}
    assert set(states) == {"payments", "shipping"}
    assert states["shipping"]["recent_failures"] == 1
    assert states["payments"]["state"] == "closed"


def payment_attempts(app, order_id=None):
    """(outcome, error) of every capture_payment attempt, oldest first."""
    from app.extensions import db
    from app.infra.models import SagaStepAttempt

    query = select(SagaStepAttempt.outcome, SagaStepAttempt.error).where(
        SagaStepAttempt.step == "capture_payment"
    )
    if order_id is not None:
        query = query.where(SagaStepAttempt.order_id == order_id)
    with app.app_context():
        rows = db.session.execute(query.order_by(SagaStepAttempt.seq)).all()
        db.session.rollback()
    return [tuple(row) for row in rows]


def open_payment_circuit(app):
    """A provider outage (chaos drill: every call fails) until the payment circuit opens."""
    from app.services import chaos
    from app.services.audit import SYSTEM

    with app.app_context():
        payments = app.extensions["payment_provider"]
        chaos.update_chaos({"payment_failure_rate": 1.0}, SYSTEM)
        for n in range(app.config["CIRCUIT_BREAKER_FAILURE_THRESHOLD"]):
            with pytest.raises(TransientError, match="injected"):
                payments.capture(order_id="ord_x", amount=100, currency="MYR",
                                 token="tok_visa", idempotency_key=f"outage-{n}")
        chaos.update_chaos({"payment_failure_rate": 0.0}, SYSTEM)
        states = circuit_states_by_provider(app)
    assert states["payments"] == "open"


def circuit_states_by_provider(app):
    from app.infra.circuit_breaker import circuit_states

    return {s["provider"]: s["state"] for s in circuit_states(app.extensions["redis"], app.config)}


def test_one_cards_processing_errors_never_get_other_orders_refused(make_app, database_url):
    """tok_processingError is the provider answering about one card: however many there are,
    the circuit stays closed and every other order ends as it would alone."""
    app = make_app(database_url, CIRCUIT_BREAKER_FAILURE_THRESHOLD=2)
    client = app.test_client()
    merchant = merchant_with_stock(app, client, stock=50)
    tokens = ["tok_processingError"] * 4 + ["tok_visa"] * 3 + ["tok_flaky"] * 2
    tokens += ["tok_chargeDeclined"]
    ids = {
        client.post("/api/v1/orders", json=order_body(token=token), headers=merchant).get_json()[
            "id"
        ]: token
        for token in tokens
    }
    drain_queues(app)
    ended = statuses(app, list(ids))
    expected = {
        "tok_processingError": ("failed", "payment_error"),
        "tok_visa": ("completed", None),
        "tok_flaky": ("completed", None),
        "tok_chargeDeclined": ("failed", "payment_declined"),
    }
    assert {order_id: expected[token] for order_id, token in ids.items()} == ended
    with app.app_context():
        assert circuit_states_by_provider(app)["payments"] == "closed"
    for order_id, token in ids.items():
        if token == "tok_processingError":  # every try reached the provider
            assert payment_attempts(app, order_id) == [
                ("retryable_error", "payment provider: processing error, try again")
            ] * 4


def test_orders_wait_out_an_open_circuit_without_using_up_their_tries(make_app, database_url):
    """While the circuit is open the call is not made: the saga records a deferred attempt and
    sleeps until the cool-down ends. An order placed during an outage longer than all its tries
    would take completes once the provider is back, with one real call."""
    app = make_app(
        database_url, CIRCUIT_BREAKER_FAILURE_THRESHOLD=2, CIRCUIT_BREAKER_COOLDOWN_SECONDS=2
    )
    client = app.test_client()
    merchant = merchant_with_stock(app, client)
    order_id = client.post("/api/v1/orders", json=order_body(), headers=merchant).get_json()["id"]
    open_payment_circuit(app)
    asked = []

    def sleep(seconds):  # the saga asks to wait until the cool-down ends; we look every 0.1 s
        asked.append(seconds)
        time.sleep(0.1)

    assert run_saga_inline(app, order_id, sleep=sleep) == "completed"
    attempts = payment_attempts(app, order_id)
    deferred = [a for a in attempts if a[0] == "deferred"]
    assert len(deferred) >= 5  # more than capture_payment's 4 tries: none of them counted
    assert all("circuit open" in error for _, error in deferred)
    assert attempts[-1] == ("succeeded", None)
    assert [a for a in attempts if a[0] != "deferred"] == [("succeeded", None)]
    assert 1.0 < asked[0] <= 2.5  # told the time left, not a backoff
    assert ledger(app, order_id) == {"capture": 1, "refund": 0}
    with app.app_context():
        assert circuit_states_by_provider(app)["payments"] == "closed"


def test_an_outage_longer_than_the_wait_limit_fails_the_order_and_compensates(
    make_app, sqlite_database_url
):
    app = make_app(
        sqlite_database_url,
        CIRCUIT_BREAKER_FAILURE_THRESHOLD=2,
        CIRCUIT_BREAKER_COOLDOWN_SECONDS=30,
    )
    client = app.test_client()
    merchant = merchant_with_stock(app, client, stock=10)
    order_id = client.post("/api/v1/orders", json=order_body(), headers=merchant).get_json()["id"]
    open_payment_circuit(app)

    status = run_saga_inline(
        app, order_id, sleep=lambda _s: time.sleep(0.05), circuit_wait_seconds=0.5
    )
    assert status == "failed"
    order = client.get(f"/api/v1/orders/{order_id}", headers=merchant).get_json()
    assert order["failure_reason"] == "payment_error"
    outcomes = [outcome for outcome, _ in payment_attempts(app, order_id)]
    assert outcomes[0] == "deferred"
    assert outcomes[-4:] == ["retryable_error"] * 4  # past the limit each refusal is a try
    assert ledger(app, order_id) == {"capture": 0, "refund": 0}
    assert stock_of(app) == (10, 0)
