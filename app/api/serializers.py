"""Models to JSON, exactly as the API contract lists the fields."""

from __future__ import annotations

from typing import Any

from flask import current_app

from app.services.representations import order_representation, rfc3339

__all__ = ["order_json", "rfc3339"]


def no_content():
    """A 204: no body, so no Content-Type either (Flask would label the empty body text/html)."""
    response = current_app.response_class(status=204)
    del response.headers["Content-Type"]
    return response


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
    return order_representation(o)


def event_json(e) -> dict[str, Any]:
    return {"type": e.type, "at": rfc3339(e.at), "detail": e.detail or {}}


def page_json(page, serialize) -> dict[str, Any]:
    return {"data": [serialize(item) for item in page.items], "next_cursor": page.next_cursor}
