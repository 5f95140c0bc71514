import random

from app.domain.retry import RetryPolicy


def test_backoff_grows_exponentially_with_jitter_and_is_capped():
    policy = RetryPolicy(max_attempts=10, base_delay=0.2, max_delay=2.0)
    rng = random.Random(7)
    for attempt, ceiling in [(1, 0.2), (2, 0.4), (3, 0.8), (4, 1.6), (5, 2.0), (9, 2.0)]:
        delays = [policy.delay(attempt, rng) for _ in range(200)]
        assert min(delays) >= ceiling / 2
        assert max(delays) <= ceiling
        assert len(set(delays)) > 100  # jitter: retries of many orders do not line up


def test_attempts_run_out_at_the_maximum():
    policy = RetryPolicy(max_attempts=3)
    assert not policy.exhausted(2)
    assert policy.exhausted(3)


def test_only_transient_errors_are_retried_and_only_while_attempts_remain():
    import pytest

    from app.domain.errors import (
        FraudSuspected,
        OutOfStock,
        PaymentDeclined,
        ShipmentRefused,
        TransientError,
    )

    policy = RetryPolicy(max_attempts=3)
    assert policy.should_retry(TransientError("timeout"), attempts=2)
    assert not policy.should_retry(TransientError("timeout"), attempts=3)
    for final in (PaymentDeclined(), OutOfStock(), ShipmentRefused(), FraudSuspected()):
        assert not policy.should_retry(final, attempts=1)
    assert not policy.should_retry(KeyError("bug"), attempts=1)  # a bug is not a blip
    with pytest.raises(ValueError):
        RetryPolicy(max_attempts=0)


def test_every_saga_event_type_is_subscribable():
    from app.domain.saga import ORDER_EVENT_TYPES

    contract = {
        "order.created", "inventory.reserved", "payment.captured", "shipment.created",
        "order.completed", "payment.declined", "inventory.released", "payment.refunded",
        "order.failed", "order.cancelled",
    }
    assert contract <= ORDER_EVENT_TYPES
