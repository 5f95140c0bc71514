"""A warning repeated by every request of an outage: logged once per interval, with a count."""

import logging

from app.observability import logs
from app.observability.logs import Throttled


def test_repeats_within_the_interval_are_held_back_and_counted(caplog, monkeypatch):
    clock = [100.0]
    monkeypatch.setattr(logs.time, "monotonic", lambda: clock[0])
    warning = Throttled(logging.getLogger("test.throttled"), "could not queue saga", seconds=10)
    with caplog.at_level(logging.WARNING, logger="test.throttled"):
        for order in range(5):
            warning.warning(order_id=f"ord_{order}")
        clock[0] += 10
        warning.warning(order_id="ord_late")
    records = [r for r in caplog.records if r.name == "test.throttled"]
    assert [(r.order_id, r.held_back) for r in records] == [("ord_0", 0), ("ord_late", 4)]
