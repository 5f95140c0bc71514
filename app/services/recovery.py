"""Re-driving sagas that stopped making progress (a killed worker, a lost job, a flushed Redis).

The database is the source of truth: any order that is not final, has not moved for a while and
whose lease has expired (its worker died or never started) is queued again. Sagas are idempotent,
so queueing one that was merely slow is harmless.
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy import or_, select

from app.domain.orders import OrderStatus
from app.domain.ports import JobQueue
from app.extensions import db
from app.infra.models import Order
from app.infra.models.base import utcnow

RECOVERY_BATCH = 500


def stuck_order_ids(stuck_after_seconds: int, limit: int = RECOVERY_BATCH) -> list[str]:
    """Non-final orders with no progress for a while and no live lease: first those whose lease
    lapsed (a worker died holding them: the contract's 60 s runs for them), then the oldest -
    during a backlog the oldest are orders whose jobs simply wait in the queue, and with `limit`
    they would crowd a killed worker's orders out of every pass."""
    now = utcnow()
    cutoff = now - dt.timedelta(seconds=stuck_after_seconds)
    query = (
        select(Order.id)
        .where(
            Order.status.in_([OrderStatus.PENDING, OrderStatus.PROCESSING]),
            Order.updated_at < cutoff,
            or_(Order.lease_expires_at.is_(None), Order.lease_expires_at < now),
        )
        .order_by(Order.lease_expires_at.is_(None), Order.updated_at)
        .limit(limit)
    )
    ids = list(db.session.scalars(query))
    db.session.rollback()
    return ids


def recover_stuck_sagas(queue: JobQueue, stuck_after_seconds: int) -> list[str]:
    """Queue every stuck order's saga again, in one batch (enqueue_many, deduplicated)."""
    ids = stuck_order_ids(stuck_after_seconds)
    if ids:
        queue.enqueue_sagas(ids)
    return ids
