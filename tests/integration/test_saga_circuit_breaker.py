"""The per-provider circuit breaker: shared through Redis, opened by transient failures only,
failing fast while open, one trial call when half-open, and observable."""

import time

import pytest
from sqlalchemy import select

from app.domain.errors import PaymentDeclined, TransientError
from tests.helpers import drain_queues, order_body
from tests.integration.saga_support import merchant_with_stock


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


def test_an_open_payment_circuit_stops_calls_to_the_provider_during_a_saga(
    make_app, sqlite_database_url
):
    from app.extensions import db
    from app.infra.models import SagaStepAttempt

    app = make_app(sqlite_database_url, CIRCUIT_BREAKER_FAILURE_THRESHOLD=2)
    client = app.test_client()
    merchant = merchant_with_stock(app, client)
    client.post("/api/v1/orders", json=order_body(token="tok_processingError"), headers=merchant)
    drain_queues(app)
    with app.app_context():
        errors = db.session.scalars(
            select(SagaStepAttempt.error)
            .where(SagaStepAttempt.step == "capture_payment")
            .order_by(SagaStepAttempt.seq)
        ).all()
    assert len(errors) == 4
    assert all("processing error" in e for e in errors[:2])
    assert all("circuit open" in e for e in errors[2:])  # failed fast, provider spared
