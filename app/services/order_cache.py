"""Order reads served from the Redis cache, version-keyed (see app/infra/cache_keys.py)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from sqlalchemy import select

from app.domain.errors import NotFound
from app.extensions import db
from app.infra import cache_keys
from app.infra.models import Order
from app.services.orders import get_order


def order_version(order_id: str, merchant_id: str | None) -> int:
    """The order's current version (its ETag); NotFound for another merchant's order."""
    row = db.session.execute(
        select(Order.version, Order.merchant_id).where(Order.id == order_id)
    ).first()
    if row is None or (merchant_id is not None and row.merchant_id != merchant_id):
        raise NotFound("order")
    return row.version


def order_document(
    order_id: str, version: int, merchant_id: str | None, serialize: Callable[[Order], dict]
) -> tuple[int, dict[str, Any]]:
    """(version, JSON) of the order: from the cache when it holds `version`, else rebuilt."""
    body = cache_keys.cached_order(order_id, version)
    if body is not None:
        return version, body
    order = get_order(order_id, merchant_id)
    body = serialize(order)
    cache_keys.store_order(order.id, order.version, body)
    return order.version, body
