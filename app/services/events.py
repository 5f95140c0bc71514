"""Order events: the timeline and the transactional outbox, written in the caller's transaction."""

from __future__ import annotations

import datetime as dt
from typing import Any

from app.domain.ids import new_id
from app.extensions import db
from app.infra.models import Order, OrderEvent
from app.infra.models.base import utcnow


def event_row(
    order_id: str,
    merchant_id: str,
    request_id: str | None,
    event_type: str,
    detail: dict[str, Any] | None = None,
    at: dt.datetime | None = None,
) -> dict[str, Any]:
    """The row of one event on an order's timeline (the ORM and the Core writers share it)."""
    return {
        "id": new_id("evt"),
        "order_id": order_id,
        "merchant_id": merchant_id,
        "type": event_type,
        "at": at or utcnow(),
        "detail": detail or {},
        "request_id": request_id,
    }


def record_event(order: Order, event_type: str, detail: dict[str, Any] | None = None) -> OrderEvent:
    """Add an event to the order's timeline; it is published only once the caller commits."""
    event = OrderEvent(
        **event_row(order.id, order.merchant_id, order.request_id, event_type, detail)
    )
    db.session.add(event)
    return event
