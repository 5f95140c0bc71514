"""Order events: the timeline and the transactional outbox, written in the caller's transaction."""

from __future__ import annotations

from typing import Any

from app.domain.ids import new_id
from app.extensions import db
from app.infra.models import Order, OrderEvent
from app.infra.models.base import utcnow


def record_event(order: Order, event_type: str, detail: dict[str, Any] | None = None) -> OrderEvent:
    """Add an event to the order's timeline; it is published only once the caller commits."""
    event = OrderEvent(
        id=new_id("evt"),
        order_id=order.id,
        merchant_id=order.merchant_id,
        type=event_type,
        at=utcnow(),
        detail=detail or {},
        request_id=order.request_id,
    )
    db.session.add(event)
    return event
