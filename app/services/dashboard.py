"""Read models for the dashboard pages."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import func, select

from app.extensions import db
from app.infra.models import Order
from app.infra.models.base import utcnow


def shift_summary() -> dict:
    """Orders by status over the last hour and day, and the newest failures."""
    now = utcnow()
    summary = {}
    for label, since in (
        ("hour", now - dt.timedelta(hours=1)),
        ("day", now - dt.timedelta(days=1)),
    ):
        rows = db.session.execute(
            select(Order.status, func.count())
            .where(Order.created_at >= since)
            .group_by(Order.status)
        ).all()
        summary[label] = {status: count for status, count in rows}
    summary["recent_failures"] = list(
        db.session.scalars(
            select(Order).where(Order.status == "failed").order_by(Order.seq.desc()).limit(10)
        )
    )
    return summary
