"""SLO status: evaluated by the scheduler from shared counts, read by /slo and the shift view.

The definitions and the math are in app.domain.slo; this module gathers the counts (Redis buckets
for API requests and finished orders, the orders table for orders still unfinished past 5 s), stores
the latest evaluation in Redis for every process to read, and records each order's outcome.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import time
from typing import Any

import redis
from flask import current_app
from sqlalchemy import select

from app.domain.orders import FINAL_STATUSES, OrderStatus, is_final
from app.domain.slo import (
    OBJECTIVES,
    ORDER_FINAL_SECONDS,
    ORDER_LATENCY,
    SLI_WINDOWS,
    WINDOWS,
    Counts,
    Evaluation,
    evaluate,
)
from app.extensions import db
from app.infra.models import Order
from app.observability.metrics import record_order_final

log = logging.getLogger(__name__)

STATUS_KEY = "slo:status"
# How long a stored evaluation stays the answer; older ones are recomputed on read.
STATUS_TTL_SECONDS = 300
# Each order's outcome is counted once, however often its saga job runs again.
_COUNTED_KEY = "slo:order-counted:{}"
_COUNTED_TTL = 7 * 86400
# Spelled as IN (...), not NOT IN (final), so the (status, ...) indexes serve the query.
UNFINISHED_STATUSES = sorted(set(OrderStatus) - FINAL_STATUSES)


def _redis() -> redis.Redis:
    return current_app.extensions["redis"]


def _key(name: str) -> str:
    return current_app.config["QUEUE_PREFIX"] + name


def record_order_outcome(order_id: str, status: str) -> bool:
    """After a saga run: count a final order once (metrics and SLO buckets); True if counted."""
    if not is_final(status):
        return False
    row = db.session.execute(
        select(Order.status, Order.failure_reason, Order.created_at, Order.finished_at).where(
            Order.id == order_id
        )
    ).one_or_none()
    db.session.rollback()  # read-only: never hold a transaction (SQLite's write lock) open
    if row is None or not is_final(row.status):
        return False
    return count_final_order(
        order_id, row.status, row.failure_reason, row.created_at, row.finished_at
    )


def count_final_order(
    order_id: str,
    status: str,
    failure_reason: str | None,
    created_at: dt.datetime,
    finished_at: dt.datetime | None,
) -> bool:
    """Count a final order once, from what the caller already knows; True if counted."""
    return bool(count_final_orders([(order_id, status, failure_reason, created_at, finished_at)]))


FinalOrder = tuple[str, str, "str | None", dt.datetime, "dt.datetime | None"]


def count_final_orders(orders: list[FinalOrder]) -> int:
    """count_final_order of several (id, status, failure reason, created, finished): one Redis
    round trip marks them counted, one records them; how many were counted now."""
    if not orders:
        return 0
    try:
        pipe = _redis().pipeline(transaction=False)
        for order in orders:
            pipe.set(_key(_COUNTED_KEY.format(order[0])), 1, nx=True, ex=_COUNTED_TTL)
        firsts = pipe.execute()
    except redis.RedisError:
        firsts = [True] * len(orders)  # better a rare double count in metrics than a lost outcome
    events = []
    for (_, status, failure_reason, created_at, finished_at), first in zip(
        orders, firsts, strict=True
    ):
        if not first:
            continue
        seconds = (finished_at - created_at).total_seconds() if finished_at else None
        record_order_final(status, failure_reason, seconds)
        events.append((ORDER_LATENCY.slug, seconds is None or seconds > ORDER_FINAL_SECONDS))
    if events:
        current_app.extensions["slo_buckets"].record(events)
    return len(events)


def _unfinished_orders_past_deadline(now: dt.datetime) -> dict[str, int]:
    """Orders still not final more than 5 s after acceptance, by window: they already missed."""
    longest = max(w.seconds for w in WINDOWS.values())
    created = db.session.scalars(
        select(Order.created_at).where(
            Order.status.in_(UNFINISHED_STATUSES),
            Order.created_at >= now - dt.timedelta(seconds=longest),
            Order.created_at < now - dt.timedelta(seconds=ORDER_FINAL_SECONDS),
        )
    ).all()
    db.session.rollback()  # read-only
    return {
        name: sum(1 for c in created if c >= now - dt.timedelta(seconds=w.seconds))
        for name, w in WINDOWS.items()
    }


def evaluate_slos(now: float | None = None) -> list[Evaluation]:
    """Every objective evaluated from the current counts (raises if Redis or the DB is down)."""
    now = time.time() if now is None else now
    counts = current_app.extensions["slo_buckets"].counts([o.slug for o in OBJECTIVES], now)
    late = _unfinished_orders_past_deadline(dt.datetime.fromtimestamp(now, dt.UTC))
    for name, pending in late.items():
        counts[ORDER_LATENCY.slug][name] += Counts(total=pending, bad=pending)
    return [evaluate(o, counts[o.slug]) for o in OBJECTIVES]


def _as_dict(evaluation: Evaluation) -> dict[str, Any]:
    objective = evaluation.objective
    return {
        "slug": objective.slug,
        "title": objective.title,
        "description": objective.description,
        "target": objective.target,
        "sli": evaluation.sli,
        "events": {
            name: {"total": evaluation.counts[name].total, "bad": evaluation.counts[name].bad}
            for name in SLI_WINDOWS
        },
        "error_budget_left": evaluation.budget_left,
        "burn_rates": evaluation.burn_rates,
        "alerts": [
            {
                "name": f"{objective.alert_name}{a.alert.name.capitalize()}Burn",
                "severity": a.alert.severity,
                "factor": a.alert.factor,
                "long_window": a.alert.long_window,
                "short_window": a.alert.short_window,
                "long_burn": a.long_burn,
                "short_burn": a.short_burn,
                "firing": a.firing,
            }
            for a in evaluation.alerts
        ],
        "state": evaluation.state,
        # The shift view's short form: "ok", or the names of the alerts firing.
        "name": objective.title,
        "budget_left": evaluation.budget_left,
        "alert": ", ".join(
            f"{a.alert.severity}: {a.alert.name} burn" for a in evaluation.firing
        ) or "ok",
        "runbook": objective.runbook,
        "runbook_url": f"/runbooks/{objective.runbook}",
    }


def evaluate_and_store(min_interval: float = 10.0) -> list[dict[str, Any]] | None:
    """The scheduler's SLO tick: evaluate and store for every process; skipped if done recently."""
    stored = _stored()
    if stored and time.time() - stored["evaluated_at"] < min_interval:
        return None
    objectives = [_as_dict(e) for e in evaluate_slos()]
    status = {"evaluated_at": time.time(), "objectives": objectives}
    _redis().set(_key(STATUS_KEY), json.dumps(status), ex=STATUS_TTL_SECONDS)
    firing = [a["name"] for a in firing_alerts(status)]
    # Logged when the set of firing alerts changes, not on every tick: the same warning repeated
    # every 10 s buries the logs, while the dashboard and Prometheus show the state.
    before = {a["name"] for a in firing_alerts(stored)} if stored else set()
    if set(firing) != before:
        if firing:
            log.warning("SLO burn-rate alerts firing", extra={"alerts": ",".join(firing)})
        else:
            log.info("SLO burn-rate alerts resolved")
    return objectives


def _stored() -> dict[str, Any] | None:
    raw = _redis().get(_key(STATUS_KEY))
    return json.loads(raw) if raw else None


def slo_overview() -> dict[str, Any]:
    """Per objective: target, SLIs (1h/6h/24h/30d), budget left, burn rates, alert state.

    {"available": bool, "evaluated_at": datetime | None, "objectives": [...]}; `available` is False
    (and `objectives` empty) while Redis or the database cannot be read.
    """
    try:
        stored = _stored()
        if stored is None:
            stored = {
                "evaluated_at": time.time(),
                "objectives": [_as_dict(e) for e in evaluate_slos()],
            }
    except Exception as exc:  # noqa: BLE001 - the dashboard shows "unavailable", never a 500
        log.warning("SLO status unavailable", extra={"error": type(exc).__name__})
        db.session.rollback()
        return {"available": False, "evaluated_at": None, "objectives": []}
    return {
        "available": True,
        "evaluated_at": dt.datetime.fromtimestamp(stored["evaluated_at"], dt.UTC),
        "objectives": stored["objectives"],
    }


def firing_alerts(overview: dict[str, Any] | None = None) -> list[dict[str, Any]]:
    """The burn-rate alerts firing now, most severe first, each with its objective and runbook."""
    overview = slo_overview() if overview is None else overview
    alerts = [
        {**alert, "objective": o["title"], "slug": o["slug"], "runbook_url": o["runbook_url"]}
        for o in overview["objectives"]
        for alert in o["alerts"]
        if alert["firing"]
    ]
    return sorted(alerts, key=lambda a: (a["severity"] != "page", -a["factor"]))
