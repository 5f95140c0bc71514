"""Read models for the dashboard pages: the shift view, the order search and the order timeline."""

from __future__ import annotations

import datetime as dt
import math
from dataclasses import dataclass, field
from typing import Any

from flask import current_app
from sqlalchemy import func, or_, select

from app.domain.errors import FieldError, ValidationFailed
from app.extensions import db
from app.infra.models import (
    AuditEntry,
    Merchant,
    Order,
    OrderEvent,
    SagaStep,
    SagaStepAttempt,
)
from app.infra.models.base import utcnow
from app.infra.queue import ALL_QUEUES
from app.infra.queue_admin import QueueAdmin
from app.infra.timeseries import epoch_bucket
from app.services import slo, webhooks
from app.services.pagination import Page, paginate, within_days

ORDER_STATUSES = ("pending", "processing", "completed", "failed", "cancelled")
FINAL_STATUSES = ("completed", "failed", "cancelled")


@dataclass
class Series:
    """One chart: bucket start times and, per series name, one value per bucket."""

    starts: list[dt.datetime]
    values: dict[str, list[float]] = field(default_factory=dict)


def _buckets(now: dt.datetime, span: dt.timedelta, step: dt.timedelta) -> list[dt.datetime]:
    count = int(span / step)
    # Align to the step so the same bucket keeps the same label between refreshes.
    epoch = dt.datetime(2000, 1, 1, tzinfo=dt.UTC)
    end = epoch + ((now - epoch) // step + 1) * step
    return [end - (count - i) * step for i in range(count)]


def _index(starts: list[dt.datetime], step: dt.timedelta, at: dt.datetime) -> int | None:
    i = math.floor((at - starts[0]) / step)
    return i if 0 <= i < len(starts) else None


def percentile(values: list[float], pct: float) -> float | None:
    """Nearest-rank percentile; None for no values."""
    if not values:
        return None
    ordered = sorted(values)
    rank = max(1, math.ceil(pct / 100 * len(ordered)))
    return ordered[rank - 1]


def _bucket_of(starts: list[dt.datetime], step: dt.timedelta, number: int) -> int | None:
    """The chart index of database bucket `number` (unix seconds // step)."""
    at = dt.datetime.fromtimestamp(number * step.total_seconds(), dt.UTC)
    return _index(starts, step, at)


def orders_by_status(now: dt.datetime, span: dt.timedelta, step: dt.timedelta) -> Series:
    """Orders created per bucket, split by their current status (counted in the database)."""
    starts = _buckets(now, span, step)
    series = Series(starts, {s: [0] * len(starts) for s in ORDER_STATUSES})
    bucket = epoch_bucket(Order.created_at, int(step.total_seconds()))
    rows = db.session.execute(
        select(bucket, Order.status, func.count())
        .where(Order.created_at >= starts[0])
        .group_by(bucket, Order.status)
    )
    for number, status, count in rows:
        i = _bucket_of(starts, step, number)
        if i is not None and status in series.values:
            series.values[status][i] += count
    return series


def throughput_and_latency(now: dt.datetime, span: dt.timedelta, step: dt.timedelta) -> Series:
    """Per bucket: orders finished (completed / failed) and p95 seconds from placed to final."""
    starts = _buckets(now, span, step)
    completed, failed = [0] * len(starts), [0] * len(starts)
    durations: list[list[float]] = [[] for _ in starts]
    # A percentile needs every value: one pass over the window's finished orders (indexed range).
    rows = db.session.execute(
        select(Order.finished_at, Order.created_at, Order.status).where(
            Order.finished_at >= starts[0], Order.status.in_(["completed", "failed"])
        )
    )
    for finished_at, created_at, status in rows:
        i = _index(starts, step, finished_at)
        if i is None:
            continue
        if status == "completed":
            completed[i] += 1
            durations[i].append((finished_at - created_at).total_seconds())
        else:
            failed[i] += 1
    p95 = [percentile(d, 95) or 0.0 for d in durations]
    return Series(starts, {"completed": completed, "failed": failed, "p95_seconds": p95})


def status_counts(since: dt.datetime) -> dict[str, int]:
    rows = db.session.execute(
        select(Order.status, func.count()).where(Order.created_at >= since).group_by(Order.status)
    ).all()
    return {status: count for status, count in rows}


def queue_admin() -> QueueAdmin:
    return QueueAdmin(
        current_app.extensions["redis"], current_app.config["QUEUE_PREFIX"], ALL_QUEUES
    )


def queue_overview() -> dict[str, Any] | None:
    """Depth, failed count, paused state and listening workers per queue; None when Redis does
    not answer. `unserved`: the waiting jobs of queues no live worker takes (a worker whose
    heartbeat stopped counts as lost, not as serving)."""
    try:
        admin = queue_admin()
        depths, failed, paused = admin.depths(), admin.failed_counts(), admin.paused()
        workers = admin.workers()
    except Exception:  # noqa: BLE001 - a Redis outage must not take the shift view down
        return None
    alive = [w for w in workers if not w.lost]  # a lost worker serves nothing
    queues = [
        {"name": n, "depth": depths[n], "failed": failed[n], "paused": n in paused,
         "workers": sum(1 for w in alive if n in w.queues)}
        for n in ALL_QUEUES
    ]
    unserved = [q for q in queues if q["depth"] and not q["workers"]]
    return {
        "queues": queues,
        "workers": len(alive),
        "lost_workers": len(workers) - len(alive),
        "unserved": {"queues": [q["name"] for q in unserved],
                     "waiting": sum(q["depth"] for q in unserved)},
    }


def slo_overview() -> dict[str, Any]:
    """The SLO module's overview (objectives, budget left, alert state) and the firing alerts."""
    overview = slo.slo_overview()
    return {
        "available": overview["available"],
        "evaluated_at": overview["evaluated_at"],
        "objectives": overview["objectives"],
        "firing": [
            {**alert, "objective": o["title"], "runbook_url": o.get("runbook_url")}
            for o in overview["objectives"]
            for alert in o.get("alerts", [])
            if alert.get("firing")
        ],
    }


def shift_summary() -> dict[str, Any]:
    """Everything the shift view shows."""
    now = utcnow()
    summary: dict[str, Any] = {
        "now": now,
        "hour": status_counts(now - dt.timedelta(hours=1)),
        "day": status_counts(now - dt.timedelta(days=1)),
        "by_status_day": orders_by_status(now, dt.timedelta(days=1), dt.timedelta(hours=1)),
        "by_status_hour": orders_by_status(
            now, dt.timedelta(hours=1), dt.timedelta(minutes=5)
        ),
        "throughput": throughput_and_latency(now, dt.timedelta(days=1), dt.timedelta(hours=1)),
        "queues": queue_overview(),
        "slo": slo_overview(),
    }
    # By when they failed (the time the list shows), not when they were placed: a saga that
    # retried for minutes fails after orders placed later. Every failed order has finished_at
    # (the saga sets both at once); ix_orders_finished_at read backwards serves the order.
    summary["recent_failures"] = list(
        db.session.scalars(
            select(Order)
            .where(Order.status == "failed", Order.finished_at.is_not(None))
            .order_by(Order.finished_at.desc(), Order.seq.desc())
            .limit(10)
        )
    )
    return summary


# --- the order list ---------------------------------------------------------------------------


@dataclass(frozen=True)
class OrderFilters:
    status: str | None = None
    merchant_id: str | None = None
    failure_reason: str | None = None
    created_from: dt.date | None = None
    created_to: dt.date | None = None  # inclusive
    search: str | None = None  # an order id or a customer email


def search_orders(filters: OrderFilters, cursor: str | None, limit: int = 50) -> Page:
    """Orders matching every given filter, newest first, one page."""
    if filters.status and filters.status not in ORDER_STATUSES:
        raise ValidationFailed([FieldError("status", "unknown status")])
    query = select(Order)
    if filters.status:
        query = query.where(Order.status == filters.status)
    if filters.merchant_id:
        query = query.where(Order.merchant_id == filters.merchant_id)
    if filters.failure_reason:
        query = query.where(Order.failure_reason == filters.failure_reason)
    query = within_days(query, Order.created_at, filters.created_from, filters.created_to)
    term = (filters.search or "").strip()
    if term:
        # Exact matches only: both columns are indexed, a LIKE scan would not be.
        emails = {term, term.lower()}
        query = query.where(or_(Order.id == term, Order.customer_email.in_(emails)))
    return paginate(query, Order.seq, limit, cursor)


def merchant_names() -> dict[str, str]:
    rows = db.session.execute(select(Merchant.id, Merchant.name).order_by(Merchant.name))
    return dict(rows.all())


def failure_reasons() -> list[str]:
    """The failure reasons that occur, for the filter's choices."""
    rows = db.session.scalars(
        select(Order.failure_reason).where(Order.failure_reason.is_not(None)).distinct()
    )
    return sorted(rows)


# --- the order timeline -----------------------------------------------------------------------


@dataclass(frozen=True)
class TimelineEntry:
    at: dt.datetime
    kind: str  # event | attempt | compensation | webhook | staff
    title: str
    outcome: str | None = None
    duration_ms: float | None = None
    error: str | None = None
    detail: dict[str, Any] | None = None
    worker: str | None = None


def _webhook_entries(order_id: str) -> list[TimelineEntry]:
    """Every webhook delivery attempt of the order's events (or the still-pending delivery)."""
    entries = []
    for item in webhooks.order_deliveries(order_id):
        delivery, url = item["delivery"], item["url"] or "(deleted endpoint)"
        title = f"webhook {delivery.event_type} → {url}"
        for a in item["attempts"]:
            outcome = "succeeded" if a.status_code and 200 <= a.status_code < 300 else "failed"
            entries.append(
                TimelineEntry(
                    at=a.at, kind="webhook", title=f"{title} · attempt {a.attempt}",
                    outcome=outcome, duration_ms=a.duration_ms, error=a.error,
                    detail={"http_status": a.status_code} if a.status_code else None,
                )
            )
        if not item["attempts"]:
            entries.append(
                TimelineEntry(at=delivery.created_at, kind="webhook", title=title,
                              outcome=delivery.status, error=delivery.last_error)
            )
    return entries


def _staff_entries(order_id: str) -> list[TimelineEntry]:
    """What people did to the order (retry, cancel), from the audit log: who, and why."""
    return [
        TimelineEntry(
            at=entry.at, kind="staff", title=f"{entry.action} by {entry.actor} ({entry.source})",
            detail={"reason": entry.reason} if entry.reason else None,
        )
        for entry in db.session.scalars(
            select(AuditEntry)
            .where(AuditEntry.target_type == "order", AuditEntry.target_id == order_id)
            .order_by(AuditEntry.seq)
        )
    ]


def order_timeline(order_id: str) -> list[TimelineEntry]:
    """One timeline, oldest first: business events, every step attempt, compensations, webhooks,
    and the staff actions on the order."""
    entries = [
        TimelineEntry(at=e.at, kind="event", title=e.type, detail=e.detail or None)
        for e in db.session.scalars(
            select(OrderEvent).where(OrderEvent.order_id == order_id).order_by(OrderEvent.seq)
        )
    ]
    for a in db.session.scalars(
        select(SagaStepAttempt)
        .where(SagaStepAttempt.order_id == order_id)
        .order_by(SagaStepAttempt.seq)
    ):
        entries.append(
            TimelineEntry(
                at=a.started_at,
                kind="compensation" if a.kind == "compensation" else "attempt",
                title=f"{a.step} · attempt {a.attempt}",
                outcome=a.outcome,
                duration_ms=a.duration_ms,
                error=a.error,
                worker=a.worker,
            )
        )
    entries.extend(_webhook_entries(order_id))
    entries.extend(_staff_entries(order_id))
    # Stable sort: at equal times, events (written after the attempt they describe) stay after.
    order = {"attempt": 0, "compensation": 0, "staff": 1, "event": 1, "webhook": 2}
    return sorted(entries, key=lambda e: (e.at, order[e.kind]))


def saga_steps(order_id: str) -> list[SagaStep]:
    return list(
        db.session.scalars(
            select(SagaStep).where(SagaStep.order_id == order_id).order_by(SagaStep.position)
        )
    )
