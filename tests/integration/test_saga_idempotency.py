"""A saga interrupted at any step boundary resumes from the step log without acting twice.

The boundary hook raises where a killed worker would stop (in this process, so every boundary is
cheap to cover on both databases); tests/integration/test_saga_kill.py does the same with SIGKILL.
"""

from collections import Counter

import pytest

from tests.helpers import order_body
from tests.integration.saga_support import (
    Interrupted,
    crash_at,
    event_types,
    integrity_problems,
    ledger,
    merchant_with_stock,
    run_saga_inline,
    stock_of,
)

POINTS = [
    ("tok_visa", "MY", "after:reserve_inventory", "completed", {"capture": 1, "refund": 0}),
    ("tok_visa", "MY", "after:capture_payment", "completed", {"capture": 1, "refund": 0}),
    ("tok_visa", "MY", "after:create_shipment", "completed", {"capture": 1, "refund": 0}),
    ("tok_visa", "MY", "before:complete", "completed", {"capture": 1, "refund": 0}),
    ("tok_visa", "XX", "after:refund_payment", "failed", {"capture": 1, "refund": 1}),
    ("tok_visa", "XX", "after:release_inventory", "failed", {"capture": 1, "refund": 1}),
]


@pytest.mark.parametrize(("token", "country", "point", "final", "money"), POINTS)
def test_a_saga_interrupted_at_a_boundary_resumes_without_acting_twice(
    app, client, token, country, point, final, money
):
    merchant = merchant_with_stock(app, client, stock=10)
    order_id = client.post(
        "/api/v1/orders", json=order_body(token=token, country=country), headers=merchant
    ).get_json()["id"]

    with pytest.raises(Interrupted):
        run_saga_inline(app, order_id, on_boundary=crash_at(point))
    assert run_saga_inline(app, order_id) == final
    assert run_saga_inline(app, order_id) == final  # a third run changes nothing

    assert ledger(app, order_id) == money
    assert stock_of(app) == ((8, 0) if final == "completed" else (10, 0))
    repeated = [t for t, n in Counter(event_types(client, merchant, order_id)).items() if n > 1]
    assert repeated == []
    assert integrity_problems(app) == []


def test_a_running_lease_keeps_a_second_worker_out(app, client):
    from app.extensions import db
    from app.services.saga import _lease
    from tests.integration.saga_support import saga_context

    merchant = merchant_with_stock(app, client)
    order_id = client.post("/api/v1/orders", json=order_body(), headers=merchant).get_json()["id"]
    with app.app_context():
        assert _lease(order_id, saga_context(app, worker="first", lease_seconds=30))
        db.session.remove()
    assert run_saga_inline(app, order_id, worker="second") == "busy"
    assert ledger(app, order_id) == {"capture": 0, "refund": 0}
