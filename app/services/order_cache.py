"""Order reads served from the Redis cache, version-keyed (see app/infra/cache_keys.py)."""

from __future__ import annotations

from collections.abc import Callable

from sqlalchemy import bindparam, select

from app.domain.errors import NotFound
from app.extensions import db
from app.infra import cache_keys
from app.infra.database import one_row_autocommit
from app.infra.models import Order
from app.services.orders import get_order

# On PostgreSQL through the driver in autocommit (infra.database.one_row_autocommit): this
# lookup is on every order read, and SQLAlchemy's statement machinery and a transaction's
# BEGIN/ROLLBACK cost more than the query. SQLite runs it in the session's transaction (a second
# connection would queue behind the session's own write lock).
_VERSION_SQL_POSTGRESQL = "SELECT version, merchant_id FROM orders WHERE id = %s"
_VERSION_QUERY = select(Order.version, Order.merchant_id).where(Order.id == bindparam("order_id"))


def order_version(order_id: str, merchant_id: str | None) -> int:
    """The order's current version (its ETag); NotFound for another merchant's order."""
    if db.engine.dialect.name == "postgresql":
        row = one_row_autocommit(db.engine, _VERSION_SQL_POSTGRESQL, (order_id,))
    else:
        row = db.session.connection().execute(_VERSION_QUERY, {"order_id": order_id}).first()
    if row is None or (merchant_id is not None and row[1] != merchant_id):
        raise NotFound("order")
    return row[0]


def order_document(
    order_id: str, version: int, merchant_id: str | None, serialize: Callable[[Order], str]
) -> tuple[int, str]:
    """(version, JSON text) of the order: from the cache when it holds `version`, else rebuilt."""
    body = cache_keys.cached_order(order_id, version)
    if body is not None:
        return version, body
    order = get_order(order_id, merchant_id)
    body = serialize(order)
    cache_keys.store_order(order.id, order.version, body)
    return order.version, body
