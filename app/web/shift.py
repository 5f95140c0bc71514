"""The shift view: the first page staff see."""

from __future__ import annotations

from flask import render_template

from app.auth.decorators import require_permission
from app.services import dashboard
from app.web import charts, web


@web.get("/")
@require_permission("dashboard:read")
def index():
    summary = dashboard.shift_summary()
    day, hour, tp = summary["by_status_day"], summary["by_status_hour"], summary["throughput"]
    figures = {
        "by_status_day": charts.stacked_bars("Orders per hour by status, last 24 h", day.starts,
                                             day.values),
        "by_status_hour": charts.stacked_bars(
            "Orders per 5 minutes by status, last hour", hour.starts, hour.values
        ),
        "throughput": charts.line_chart(
            "Orders finished per hour, last 24 h", tp.starts,
            {"completed": tp.values["completed"], "failed": tp.values["failed"]},
            charts.STATUS_COLOURS,
        ),
        "p95": charts.line_chart(
            "p95 processing time per hour (placed to completed), last 24 h", tp.starts,
            {"p95": tp.values["p95_seconds"]}, {"p95": "#2657d9"}, unit="s",
        ),
    }
    return render_template(
        "index.html", summary=summary, figures=figures, statuses=dashboard.ORDER_STATUSES,
        budget_bar=charts.budget_bar,
    )
