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
