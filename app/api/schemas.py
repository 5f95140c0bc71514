"""Request schemas: the endpoints validate with these, and the OpenAPI document is built from them.

`extra="forbid"` everywhere: a client can never set status, merchant_id, total_amount and the like.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, StrictInt

from app.domain.currencies import ISO_4217_CODES, is_currency
from app.domain.orders import FAILURE_REASONS, MAX_AMOUNT, OrderStatus


def _iso_4217(code: str) -> str:
    if not is_currency(code):
        raise ValueError("must be an ISO 4217 currency code, like MYR or EUR")
    return code


# The enum puts the codes in the OpenAPI document; the validator gives a one-line message (a
# Literal would list all the codes in every error).
Currency = Annotated[
    str,
    Field(pattern=r"^[A-Z]{3}$", json_schema_extra={"enum": sorted(ISO_4217_CODES)}),
    AfterValidator(_iso_4217),
]


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


class TokenRequest(Strict):
    username: str = Field(min_length=1, max_length=150)
    password: str = Field(min_length=1, max_length=1024)


class MerchantCreate(Strict):
    name: str = Field(min_length=1, max_length=200)


class ApiKeyCreate(Strict):
    name: str = Field(min_length=1, max_length=200)


class UserCreate(Strict):
    username: str = Field(min_length=3, max_length=150)
    password: str = Field(min_length=12, max_length=1024)
    role: Literal["admin", "operator", "viewer", "merchant"]
    merchant_id: str | None = Field(default=None, max_length=40)


class ProductCreate(Strict):
    # Starts with a letter or digit: "." and ".." would be path segments no client can address.
    sku: str = Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]*$")
    name: str = Field(min_length=1, max_length=200)
    price: StrictInt = Field(ge=0, le=MAX_AMOUNT)
    currency: Currency
    stock: StrictInt = Field(ge=0, le=10**9)


class ProductUpdate(Strict):
    # Optional but never null: an absent field is left alone, `null` is refused (422).
    name: str = Field(default=None, min_length=1, max_length=200)  # type: ignore[assignment]
    price: StrictInt = Field(default=None, ge=0, le=MAX_AMOUNT)  # type: ignore[assignment]
    stock: StrictInt = Field(default=None, ge=0, le=10**9)  # type: ignore[assignment]


class OrderItem(Strict):
    sku: str = Field(min_length=1, max_length=64)
    quantity: StrictInt = Field(ge=1, le=1000)


class Customer(Strict):
    email: str = Field(min_length=3, max_length=320, pattern=r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
    name: str = Field(default="", max_length=200)


class ShippingAddress(Strict):
    line1: str = Field(min_length=1, max_length=200)
    line2: str | None = Field(default=None, max_length=200)
    city: str = Field(min_length=1, max_length=100)
    postal_code: str = Field(min_length=1, max_length=20)
    country: str = Field(pattern=r"^[A-Z]{2}$")


class Payment(Strict):
    token: str = Field(min_length=1, max_length=100)


class OrderCreate(Strict):
    items: list[OrderItem] = Field(min_length=1, max_length=100)
    customer: Customer
    shipping_address: ShippingAddress
    payment: Payment


# --- Responses: the OpenAPI document describes what the serializers return with these. ---------

# Built from the domain's own lists, so the document cannot drift from the state machine.
ORDER_STATUSES = tuple(status.value for status in OrderStatus)
OrderStatusName = Literal[ORDER_STATUSES]  # type: ignore[valid-type]
FailureReason = Literal[FAILURE_REASONS]  # type: ignore[valid-type]
Timestamp = Field(
    description="RFC 3339, UTC",
    examples=["2026-11-26T23:07:32Z"],
    json_schema_extra={"format": "date-time"},
)


class Out(BaseModel):
    model_config = ConfigDict(extra="forbid")


class TokenOut(Out):
    access_token: str
    token_type: Literal["Bearer"]
    expires_in: int


class MerchantOut(Out):
    id: str
    name: str
    created_at: str = Timestamp


class ApiKeyOut(Out):
    id: str
    name: str
    prefix: str
    key: str = Field(description="The key itself: shown only in this response, never again")
    created_at: str = Timestamp


class UserOut(Out):
    id: str
    username: str
    role: Literal["admin", "operator", "viewer", "merchant"]
    merchant_id: str | None


class ProductOut(Out):
    sku: str
    name: str
    price: int = Field(description="Integer minor units")
    currency: str
    stock: int
    reserved: int
    updated_at: str = Timestamp


class ProductPage(Out):
    data: list[ProductOut]
    next_cursor: str | None


class OrderLineOut(Out):
    sku: str
    quantity: int
    unit_price: int
    line_total: int


class CustomerOut(Out):
    email: str
    name: str


class ShippingAddressOut(Out):
    line1: str
    line2: str | None = None
    city: str
    postal_code: str
    country: str


class OrderOut(Out):
    id: str
    status: OrderStatusName
    items: list[OrderLineOut]
    total_amount: int
    currency: str
    customer: CustomerOut
    shipping_address: ShippingAddressOut
    failure_reason: FailureReason | None
    created_at: str = Timestamp
    updated_at: str = Timestamp


class OrderPage(Out):
    data: list[OrderOut]
    next_cursor: str | None


class EventOut(Out):
    type: str
    at: str = Timestamp
    detail: dict


class EventList(Out):
    data: list[EventOut]


class FieldProblem(Out):
    field: str
    message: str


class Problem(BaseModel):
    """RFC 9457 problem details; validation errors add `errors`."""

    type: str
    title: str
    status: int
    detail: str
    request_id: str | None
    errors: list[FieldProblem] | None = None


class ApiKeyRotate(Strict):
    overlap_seconds: StrictInt | None = Field(
        default=None, ge=0, le=30 * 86400,
        description="How long the old key keeps working (default API_KEY_ROTATION_OVERLAP_SECONDS)",
    )


class ApiKeyRotatedOut(ApiKeyOut):
    replaces: str = Field(description="The id of the rotated key")
    previous_key_expires_at: str = Timestamp
