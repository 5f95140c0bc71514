"""SLO math against hand-computed cases: SLIs, error budget left, burn rates, alert states."""

import pytest

from app.domain.slo import (
    API_AVAILABILITY,
    ORDER_LATENCY,
    WINDOWS,
    Counts,
    burn_rate,
    error_budget_left,
    evaluate,
    sli,
)


def counts(**by_window):
    """Counts for every window; unnamed windows get the 30-day figures' share of nothing."""
    result = {name: Counts() for name in WINDOWS}
    for name, (total, bad) in by_window.items():
        result[name.removeprefix("w")] = Counts(total, bad)
    return result


def test_no_traffic_has_no_sli_burns_nothing_and_keeps_the_whole_budget():
    evaluation = evaluate(API_AVAILABILITY, counts())
    assert evaluation.sli == {"1h": None, "6h": None, "24h": None, "30d": None}
    assert all(rate == 0.0 for rate in evaluation.burn_rates.values())
    assert evaluation.budget_left == 1.0
    assert evaluation.firing == ()
    assert evaluation.state == "no_data"


def test_sli_is_the_share_of_good_events():
    assert sli(Counts(total=1000, bad=1)) == pytest.approx(0.999)
    assert sli(Counts(total=4, bad=4)) == 0.0


def test_burn_rate_is_the_error_ratio_over_the_budget():
    # 2% errors against a 0.1% budget: 20x.
    assert burn_rate(Counts(total=1000, bad=20), API_AVAILABILITY) == pytest.approx(20.0)
    # 1% slow orders against a 1% budget: exactly the sustainable rate.
    assert burn_rate(Counts(total=500, bad=5), ORDER_LATENCY) == pytest.approx(1.0)


def test_budget_left_counts_down_and_goes_negative_when_overspent():
    # 100,000 requests allow 100 errors; 20 spent leaves 80%.
    assert error_budget_left(Counts(100_000, 20), API_AVAILABILITY) == pytest.approx(0.8)
    # 1,000 orders allow 10 slow ones; 20 slow overspends by 100%.
    assert error_budget_left(Counts(1000, 20), ORDER_LATENCY) == pytest.approx(-1.0)


def test_fast_burn_pages_when_both_the_hour_and_the_last_5_minutes_burn_over_14_4x():
    evaluation = evaluate(
        API_AVAILABILITY,
        counts(w5m=(100, 2), w30m=(500, 10), w1h=(1000, 20), w6h=(6000, 20), w24h=(24000, 20),
               w3d=(72000, 20), w30d=(100_000, 20)),
    )
    firing = {a.alert.name: a for a in evaluation.firing}
    assert set(firing) == {"fast"}  # 6h burns 3.3x < 6x; 3d burns 0.28x < 1x
    assert firing["fast"].long_burn == pytest.approx(20.0)
    assert firing["fast"].short_burn == pytest.approx(20.0)
    assert evaluation.state == "page"
    assert evaluation.budget_left == pytest.approx(0.8)
    assert evaluation.sli["1h"] == pytest.approx(0.98)


def test_fast_burn_stops_firing_once_the_last_5_minutes_are_clean():
    evaluation = evaluate(
        API_AVAILABILITY, counts(w5m=(100, 0), w1h=(1000, 20), w30d=(100_000, 20))
    )
    fast = next(a for a in evaluation.alerts if a.alert.name == "fast")
    assert fast.long_burn == pytest.approx(20.0) and fast.short_burn == 0.0
    assert not fast.firing
    assert evaluation.state == "ok"


def test_slow_burn_opens_a_ticket_not_a_page():
    # Orders: 1.5% slow over 3 days and 1.2% over 6 hours against a 1% budget.
    evaluation = evaluate(
        ORDER_LATENCY,
        counts(w5m=(20, 0), w30m=(100, 1), w1h=(200, 3), w6h=(1000, 12), w24h=(4000, 50),
               w3d=(10_000, 150), w30d=(50_000, 150)),
    )
    assert [a.alert.name for a in evaluation.firing] == ["slow"]
    assert evaluation.burn_rates["3d"] == pytest.approx(1.5)
    assert evaluation.burn_rates["6h"] == pytest.approx(1.2)
    assert evaluation.state == "ticket"
    assert evaluation.budget_left == pytest.approx(0.7)  # 150 of 500 allowed slow orders


def test_medium_burn_needs_6x_over_6_hours_and_30_minutes():
    evaluation = evaluate(
        API_AVAILABILITY, counts(w30m=(1000, 7), w6h=(10_000, 70), w30d=(100_000, 70))
    )
    assert [a.alert.name for a in evaluation.firing] == ["medium"]  # 7x over both


def test_evaluation_needs_counts_for_every_window():
    with pytest.raises(ValueError, match="30d"):
        evaluate(API_AVAILABILITY, {"1h": Counts()})
