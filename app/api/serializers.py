"""Models to JSON, exactly as the API contract lists the fields."""

from __future__ import annotations

import datetime as dt
from typing import Any


def rfc3339(value: dt.datetime | None) -> str | None:
    if value is None:
        return None
    return value.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def merchant_json(m) -> dict[str, Any]:
    return {"id": m.id, "name": m.name, "created_at": rfc3339(m.created_at)}


def api_key_json(k, plain: str | None = None) -> dict[str, Any]:
    body = {"id": k.id, "name": k.name, "prefix": k.prefix, "created_at": rfc3339(k.created_at)}
    if plain is not None:
        body["key"] = plain
    return body


def user_json(u) -> dict[str, Any]:
    return {"id": u.id, "username": u.username, "role": u.role, "merchant_id": u.merchant_id}


def product_json(p) -> dict[str, Any]:
    return {
        "sku": p.sku,
        "name": p.name,
        "price": p.price,
        "currency": p.currency,
        "stock": p.stock,
        "reserved": p.reserved,
        "updated_at": rfc3339(p.updated_at),
    }


def order_json(o) -> dict[str, Any]:
    return {
        "id": o.id,
        "status": o.status,
        "items": [
            {
                "sku": line.sku,
                "quantity": line.quantity,
                "unit_price": line.unit_price,
                "line_total": line.line_total,
            }
            for line in o.lines
        ],
        "total_amount": o.total_amount,
        "currency": o.currency,
        "customer": {"email": o.customer_email, "name": o.customer_name},
        "shipping_address": o.shipping_address,
        "failure_reason": o.failure_reason,
        "created_at": rfc3339(o.created_at),
        "updated_at": rfc3339(o.updated_at),
    }


def event_json(e) -> dict[str, Any]:
    return {"type": e.type, "at": rfc3339(e.at), "detail": e.detail or {}}


def page_json(page, serialize) -> dict[str, Any]:
    return {"data": [serialize(item) for item in page.items], "next_cursor": page.next_cursor}
