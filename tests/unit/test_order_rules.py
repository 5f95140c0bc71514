"""Order pricing and validation rules."""

import pytest

from app.domain.errors import InvalidTransition, ValidationFailed
from app.domain.orders import (
    CatalogueItem,
    check_customer_and_address,
    check_transition,
    price_order,
)

CATALOGUE = {
    "A": CatalogueItem("prd_a", "A", 1999, "MYR"),
    "B": CatalogueItem("prd_b", "B", 500, "MYR"),
    "U": CatalogueItem("prd_u", "U", 100, "USD"),
}


def fields(exc: ValidationFailed) -> list[str]:
    return [e.field for e in exc.errors]


def test_prices_come_from_the_catalogue_and_lines_of_one_sku_merge():
    priced = price_order(
        [{"sku": "A", "quantity": 2}, {"sku": "B", "quantity": 1}, {"sku": "A", "quantity": 1}],
        CATALOGUE,
    )
    assert priced.total_amount == 3 * 1999 + 500
    assert priced.currency == "MYR"
    assert [(ln.sku, ln.quantity, ln.line_total) for ln in priced.lines] == [
        ("A", 3, 5997),
        ("B", 1, 500),
    ]


def test_the_quantity_bound_is_per_line_as_sent_not_per_merged_product():
    priced = price_order([{"sku": "B", "quantity": 600}, {"sku": "B", "quantity": 600}], CATALOGUE)
    assert [(ln.sku, ln.quantity, ln.line_total) for ln in priced.lines] == [("B", 1200, 600_000)]


@pytest.mark.parametrize(
    ("items", "field"),
    [
        ([], "items"),
        ([{"sku": "nope", "quantity": 1}], "items[0].sku"),
        ([{"sku": "A", "quantity": 0}], "items[0].quantity"),
        ([{"sku": "A", "quantity": 1001}], "items[0].quantity"),
        ([{"sku": "A", "quantity": 1.5}], "items[0].quantity"),
        ([{"sku": "A", "quantity": 1}, {"sku": "U", "quantity": 1}], "items"),
        ([{"sku": "A", "quantity": 1}] * 101, "items"),
    ],
)
def test_invalid_orders_name_the_offending_field(items, field):
    with pytest.raises(ValidationFailed) as exc:
        price_order(items, CATALOGUE)
    assert field in fields(exc.value)


def test_customer_address_and_token_are_checked_together():
    with pytest.raises(ValidationFailed) as exc:
        check_customer_and_address({"email": "not-an-email"}, {"country": "Malaysia"}, "")
    assert fields(exc.value) == ["customer.email", "shipping_address.country", "payment.token"]


def test_final_orders_cannot_move():
    check_transition("pending", "processing")
    with pytest.raises(InvalidTransition):
        check_transition("completed", "cancelled")
    with pytest.raises(InvalidTransition):
        check_transition("failed", "processing")


def test_status_as_of_an_event_is_what_the_event_left_the_order_in():
    from app.domain.orders import status_as_of_event

    assert status_as_of_event("order.created", {}, "completed") == "pending"
    assert status_as_of_event("payment.captured", {}, "completed") == "processing"
    assert status_as_of_event("order.failed", {}, "failed") == "failed"
    assert status_as_of_event("order.cancel_requested", {"status": "pending"}, "cancelled") \
        == "pending"
    assert status_as_of_event("order.cancel_requested", {}, "processing") == "processing"
