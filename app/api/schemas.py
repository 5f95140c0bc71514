"""Request schemas: the endpoints validate with these, and the OpenAPI document is built from them.

`extra="forbid"` everywhere: a client can never set status, merchant_id, total_amount and the like.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, StrictInt


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
    sku: str = Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9._-]+$")
    name: str = Field(min_length=1, max_length=200)
    price: StrictInt = Field(ge=0, le=10**12)
    currency: str = Field(pattern=r"^[A-Z]{3}$")
    stock: StrictInt = Field(ge=0, le=10**9)


class ProductUpdate(Strict):
    name: str | None = Field(default=None, min_length=1, max_length=200)
    price: StrictInt | None = Field(default=None, ge=0, le=10**12)
    stock: StrictInt | None = Field(default=None, ge=0, le=10**9)


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
