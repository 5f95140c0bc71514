"""The saga state machine, with no app and no I/O."""

import pytest

from app.domain.orders import OrderStatus
from app.domain.saga import ActionKind, decide

S, F, P, R, C = "succeeded", "failed", "pending", "running", "compensated"


def steps(reserve=P, capture=P, ship=P, complete=P):
    return {
        "reserve_inventory": reserve,
        "capture_payment": capture,
        "create_shipment": ship,
        "complete": complete,
    }


def test_a_new_saga_starts_by_reserving_inventory():
    action = decide(steps(), cancel_requested=False)
    assert (action.kind, action.step) == (ActionKind.RUN, "reserve_inventory")


@pytest.mark.parametrize(
    ("state", "next_step"),
    [
        (steps(reserve=S), "capture_payment"),
        (steps(reserve=S, capture=S), "create_shipment"),
        (steps(reserve=S, capture=S, ship=S), "complete"),
        (steps(reserve=S, capture=R), "capture_payment"),  # resumed after a crash
    ],
)
def test_forward_progress_runs_the_first_unfinished_step(state, next_step):
    action = decide(state, cancel_requested=False)
    assert (action.kind, action.step) == (ActionKind.RUN, next_step)


def test_completed_saga_finishes_completed():
    action = decide(steps(S, S, S, S), cancel_requested=False)
    assert (action.kind, action.final_status) == (ActionKind.FINISH, OrderStatus.COMPLETED)


def test_declined_payment_compensates_the_reservation_then_fails():
    assert decide(steps(reserve=S, capture=F), False).step == "reserve_inventory"
    assert decide(steps(reserve=S, capture=F), False).kind == ActionKind.COMPENSATE
    final = decide(steps(reserve=C, capture=F), False)
    assert (final.kind, final.final_status) == (ActionKind.FINISH, OrderStatus.FAILED)


def test_refused_shipment_compensates_newest_first():
    first = decide(steps(reserve=S, capture=S, ship=F), False)
    assert (first.kind, first.step) == (ActionKind.COMPENSATE, "capture_payment")
    second = decide(steps(reserve=S, capture=C, ship=F), False)
    assert (second.kind, second.step) == (ActionKind.COMPENSATE, "reserve_inventory")


def test_out_of_stock_fails_without_touching_payment():
    action = decide(steps(reserve=F), False)
    assert (action.kind, action.final_status) == (ActionKind.FINISH, OrderStatus.FAILED)


def test_cancel_before_anything_ran_ends_cancelled():
    action = decide(steps(), cancel_requested=True)
    assert (action.kind, action.final_status) == (ActionKind.FINISH, OrderStatus.CANCELLED)


def test_cancel_mid_saga_compensates_then_ends_cancelled():
    action = decide(steps(reserve=S, capture=S), cancel_requested=True)
    assert (action.kind, action.step) == (ActionKind.COMPENSATE, "capture_payment")
    final = decide(steps(reserve=C, capture=C), cancel_requested=True)
    assert final.final_status == OrderStatus.CANCELLED


def test_cancel_during_a_step_in_flight_finishes_that_step_first():
    action = decide(steps(reserve=S, capture=R), cancel_requested=True)
    assert (action.kind, action.step) == (ActionKind.RUN, "capture_payment")


def test_a_completed_saga_ignores_a_late_cancel():
    action = decide(steps(S, S, S, S), cancel_requested=True)
    assert action.final_status == OrderStatus.COMPLETED


def test_a_cancel_accepted_while_a_failure_is_being_compensated_ends_cancelled():
    # The API answered 202 (the order was not final), so the merchant is owed a cancelled order.
    undoing = decide(steps(reserve=S, capture=S, ship=F), cancel_requested=True)
    assert (undoing.kind, undoing.step) == (ActionKind.COMPENSATE, "capture_payment")
    final = decide(steps(reserve=C, capture=C, ship=F), cancel_requested=True)
    assert (final.kind, final.final_status) == (ActionKind.FINISH, OrderStatus.CANCELLED)
    assert decide(steps(reserve=C, capture=C, ship=F), cancel_requested=False).final_status == (
        OrderStatus.FAILED
    )
