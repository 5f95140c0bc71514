"""The rollout rule: stable per merchant, monotonic in the percentage, overrides win."""

from app.domain.flags import FlagState, flag_is_on, rollout_bucket

MERCHANTS = [f"mer_{i}" for i in range(2000)]


def test_a_merchants_bucket_is_stable_and_differs_between_flags():
    assert rollout_bucket("new_ui", "mer_1") == rollout_bucket("new_ui", "mer_1")
    buckets_a = [rollout_bucket("a", m) for m in MERCHANTS[:200]]
    buckets_b = [rollout_bucket("b", m) for m in MERCHANTS[:200]]
    assert buckets_a != buckets_b


def test_rollout_percentage_selects_about_that_share_and_only_ever_adds_merchants():
    previous: set[str] = set()
    for pct in (0, 10, 25, 50, 100):
        flag = FlagState("new_ui", True, pct)
        on = {m for m in MERCHANTS if flag_is_on(flag, m)}
        assert abs(len(on) / len(MERCHANTS) * 100 - pct) < 4
        assert previous <= on
        previous = on


def test_overrides_win_over_enabled_and_rollout():
    flag = FlagState("new_ui", False, 0, {"mer_vip": True})
    assert flag_is_on(flag, "mer_vip")
    assert not flag_is_on(flag, "mer_other")
    off_for_one = FlagState("new_ui", True, 100, {"mer_opt_out": False})
    assert not flag_is_on(off_for_one, "mer_opt_out")
    assert flag_is_on(off_for_one, "mer_other")


def test_a_missing_or_disabled_flag_is_off_and_global_checks_need_full_rollout():
    assert not flag_is_on(None, "mer_1")
    assert not flag_is_on(FlagState("x", False), "mer_1")
    assert flag_is_on(FlagState("x", True, 100))
    assert not flag_is_on(FlagState("x", True, 50))
