"""The public JSON shape of an order: one definition for API responses and webhook payloads."""

from __future__ import annotations

import datetime as dt
from typing import Any


def rfc3339(value: dt.datetime | None) -> str | None:
    """RFC 3339 in UTC with a Z, to the second (the API contract's time format)."""
    if value is None:
        return None
    return value.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def order_representation(order) -> dict[str, Any]:
    """The order exactly as the API contract lists its fields."""
    return {
        "id": order.id,
        "status": order.status,
        "items": [
            {
                "sku": line.sku,
                "quantity": line.quantity,
                "unit_price": line.unit_price,
                "line_total": line.line_total,
            }
            for line in order.lines
        ],
        "total_amount": order.total_amount,
        "currency": order.currency,
        "customer": {"email": order.customer_email, "name": order.customer_name},
        "shipping_address": order.shipping_address,
        "failure_reason": order.failure_reason,
        "created_at": rfc3339(order.created_at),
        "updated_at": rfc3339(order.updated_at),
    }
