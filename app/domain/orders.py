"""Orders: statuses, allowed transitions, failure reasons and the rules for a new order."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum

from app.domain.errors import FieldError, InvalidTransition, ValidationFailed


class OrderStatus(StrEnum):
    PENDING = "pending"
    PROCESSING = "processing"
    COMPLETED = "completed"
    FAILED = "failed"
    CANCELLED = "cancelled"


FINAL_STATUSES = frozenset({OrderStatus.COMPLETED, OrderStatus.FAILED, OrderStatus.CANCELLED})
CANCELLABLE_STATUSES = frozenset({OrderStatus.PENDING, OrderStatus.PROCESSING})

FAILURE_REASONS = (
    "out_of_stock",
    "payment_declined",
    "payment_error",
    "shipment_failed",
    "fraud_suspected",
)

# Failures that happen before any money moved: an operator may re-open such an order and run its
# saga again (restocked, the provider back, the card fixed). A failure after the charge
# (shipment_failed: charged, then refunded) is not re-opened: running again would charge the
# customer a second time.
REOPENABLE_FAILURES = frozenset({
    "out_of_stock", "payment_declined", "payment_error", "fraud_suspected",
})


def reopen_refusal(failure_reason: str | None, was_charged: bool, cancel_requested: bool):
    """Why a failed order may not be re-opened for another saga run, or None when it may."""
    if cancel_requested:
        return "The merchant asked to cancel this order; it stays failed."
    if was_charged or failure_reason not in REOPENABLE_FAILURES:
        return (
            "The customer was charged for this order and refunded when it failed; running the "
            "saga again would charge them a second time. Ask the customer to place a new order."
        )
    return None


_TRANSITIONS: dict[OrderStatus, frozenset[OrderStatus]] = {
    OrderStatus.PENDING: frozenset(
        {OrderStatus.PROCESSING, OrderStatus.FAILED, OrderStatus.CANCELLED}
    ),
    OrderStatus.PROCESSING: frozenset(
        {OrderStatus.COMPLETED, OrderStatus.FAILED, OrderStatus.CANCELLED}
    ),
    OrderStatus.COMPLETED: frozenset(),
    OrderStatus.FAILED: frozenset(),
    OrderStatus.CANCELLED: frozenset(),
}

MAX_LINES = 100
MAX_QUANTITY = 1000
# Amounts are stored as 32-bit integers (minor units): a larger total cannot be recorded.
MAX_AMOUNT = 2**31 - 1
_EMAIL = re.compile(r"^[^@\s]{1,64}@[^@\s]+\.[^@\s]+$")
_COUNTRY = re.compile(r"^[A-Z]{2}$")


def is_final(status: str) -> bool:
    """True for completed, failed and cancelled: nothing changes the order after that."""
    return status in FINAL_STATUSES


# The status an event leaves the order in, where the event alone tells: a webhook describes the
# order as of its event, not as of its (later) delivery.
_STATUS_AFTER_EVENT = {
    "order.created": OrderStatus.PENDING,
    "order.completed": OrderStatus.COMPLETED,
    "order.failed": OrderStatus.FAILED,
    "order.cancelled": OrderStatus.CANCELLED,
    "order.retried": OrderStatus.PENDING,
}


def status_as_of_event(event_type: str, detail: dict, status_now: str) -> str:
    """The order's status right after an event of its timeline.

    A saga step's event happens while the saga runs (processing); a cancel request leaves the
    status as it was (recorded in its detail; else the present one while the order is open).
    """
    if event_type in _STATUS_AFTER_EVENT:
        return _STATUS_AFTER_EVENT[event_type]
    if event_type == "order.cancel_requested":
        recorded = detail.get("status")
        if recorded in CANCELLABLE_STATUSES:
            return recorded
        return status_now if not is_final(status_now) else OrderStatus.PROCESSING
    return OrderStatus.PROCESSING


def check_transition(current: str, new: str) -> None:
    """Raise InvalidTransition unless an order may move from `current` to `new`."""
    if OrderStatus(new) not in _TRANSITIONS[OrderStatus(current)]:
        raise InvalidTransition(f"an order cannot go from {current} to {new}")


@dataclass(frozen=True)
class CatalogueItem:
    """What the catalogue says about a SKU, as pricing needs it."""

    product_id: str
    sku: str
    price: int
    currency: str


@dataclass(frozen=True)
class PricedLine:
    product_id: str
    sku: str
    quantity: int
    unit_price: int
    line_total: int


@dataclass(frozen=True)
class PricedOrder:
    lines: tuple[PricedLine, ...]
    total_amount: int
    currency: str


def price_order(
    items: Sequence[Mapping[str, object]], catalogue: Mapping[str, CatalogueItem]
) -> PricedOrder:
    """Price requested lines from the catalogue (never from the client) and check the order rules.

    Lines naming the same SKU twice are merged, so stock is reserved once per product. The
    contract's 1-1000 bounds each line as sent; a merged line may hold more (two lines of 600 are
    a valid order of 1,200), and only the total's own bound (MAX_AMOUNT) applies to the sum.
    """
    errors: list[FieldError] = []
    if not 1 <= len(items) <= MAX_LINES:
        errors.append(FieldError("items", f"an order has 1 to {MAX_LINES} lines"))
    quantities: dict[str, int] = {}
    for index, item in enumerate(items):
        sku, quantity = item.get("sku"), item.get("quantity")
        if sku not in catalogue:
            errors.append(FieldError(f"items[{index}].sku", "no such product in your catalogue"))
            continue
        if not isinstance(quantity, int) or isinstance(quantity, bool):
            errors.append(FieldError(f"items[{index}].quantity", "must be a whole number"))
            continue
        if not 1 <= quantity <= MAX_QUANTITY:
            errors.append(
                FieldError(f"items[{index}].quantity", f"must be between 1 and {MAX_QUANTITY}")
            )
            continue
        quantities[sku] = quantities.get(sku, 0) + quantity
    currencies = {catalogue[sku].currency for sku in quantities}
    if len(currencies) > 1:
        errors.append(FieldError("items", "all products of an order must share one currency"))
    if errors:
        raise ValidationFailed(errors)
    lines = tuple(
        PricedLine(
            product_id=catalogue[sku].product_id,
            sku=sku,
            quantity=quantity,
            unit_price=catalogue[sku].price,
            line_total=catalogue[sku].price * quantity,
        )
        for sku, quantity in quantities.items()
    )
    total = sum(line.line_total for line in lines)
    if total > MAX_AMOUNT:
        raise ValidationFailed([FieldError("items", f"the order total exceeds {MAX_AMOUNT}")])
    return PricedOrder(lines=lines, total_amount=total, currency=currencies.pop())


def _looks_like_card_number(token: str) -> bool:
    """12-19 digits, spaces or dashes allowed between them: a primary account number's shape."""
    digits = token.replace(" ", "").replace("-", "")
    return digits.isascii() and digits.isdigit() and 12 <= len(digits) <= 19


def check_customer_and_address(
    customer: Mapping[str, object], address: Mapping[str, object], payment_token: object
) -> None:
    """Rules for the customer, address and payment parts of a new order."""
    errors: list[FieldError] = []
    email = customer.get("email")
    if not isinstance(email, str) or not _EMAIL.match(email):
        errors.append(FieldError("customer.email", "must be a valid email address"))
    country = address.get("country")
    if not isinstance(country, str) or not _COUNTRY.match(country):
        errors.append(
            FieldError("shipping_address.country", "must be a two-letter country code, like MY")
        )
    if not isinstance(payment_token, str) or not payment_token.strip():
        errors.append(FieldError("payment.token", "a payment token is required"))
    elif _looks_like_card_number(payment_token):
        # A card number must never be stored (PCI DSS): the provider's token stands for it.
        errors.append(FieldError(
            "payment.token",
            "must be the payment provider's token (like tok_visa), never a card number",
        ))
    if errors:
        raise ValidationFailed(errors)
