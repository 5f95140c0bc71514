"""Prometheus recording/alert rules and the Grafana dashboard, generated from app.domain.slo.

`flask --app wsgi observability generate` writes deploy/prometheus/orderprocessing-rules.yml and
deploy/grafana/orderprocessing-dashboard.json; a test fails when the shipped files drift from these
definitions, and another runs `promtool check rules` and `promtool test rules` on them.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import yaml

from app.domain.slo import BURN_RATE_ALERTS, OBJECTIVES, WINDOWS, Objective

RULES_FILE = Path("prometheus") / "orderprocessing-rules.yml"
DASHBOARD_FILE = Path("grafana") / "orderprocessing-dashboard.json"


def ratio_record(objective: Objective, window: str) -> str:
    """The recorded series holding the objective's bad-event ratio over `window`."""
    return f"slo:{objective.slug}:error_ratio_rate{window}"


def runbook_url(base_url: str, slug: str) -> str:
    return f"{base_url.rstrip('/')}/runbooks/{slug}"


def _budget(objective: Objective) -> str:
    return f"{round(objective.error_budget, 6)}"


def _slo_alerts(objective: Objective, base_url: str) -> list[dict[str, Any]]:
    alerts = []
    for alert in BURN_RATE_ALERTS:
        threshold = f"({alert.factor} * {_budget(objective)})"
        alerts.append(
            {
                "alert": f"{objective.alert_name}{alert.name.capitalize()}Burn",
                "expr": (
                    f"{ratio_record(objective, alert.long_window)} > {threshold}"
                    f" and {ratio_record(objective, alert.short_window)} > {threshold}"
                ),
                "for": alert.hold,
                "labels": {"severity": alert.severity, "slo": objective.slug},
                "annotations": {
                    "summary": f"{objective.title}: error budget burning {alert.factor}x",
                    "description": (
                        f"{objective.description} The error budget burns at least "
                        f"{alert.factor}x the sustainable rate over {alert.long_window} and "
                        f"{alert.short_window}."
                    ),
                    "runbook_url": runbook_url(base_url, objective.runbook),
                },
            }
        )
    return alerts


# Alerts on causes rather than SLO symptoms: each leads to its runbook.
OPERATIONS_ALERTS = (
    (
        "StuckSagas",
        "saga_stuck_orders > 0",
        "10m",
        "ticket",
        "stuck-sagas",
        "Orders have made no saga progress for longer than SAGA_STUCK_AFTER_SECONDS.",
    ),
    (
        "IntegrityDiscrepancies",
        "integrity_discrepancies > 0",
        "10m",
        "ticket",
        "integrity-discrepancies",
        "Stock, orders, payments or refunds disagree: the scheduler's check-integrity run found "
        "discrepancies. Its log lists each (so does `flask --app wsgi check-integrity`); most "
        "come from sagas that stopped half-way.",
    ),
    (
        "QueueBacklog",
        'sum(rq_queue_depth{queue="sagas"}) > 100',
        "10m",
        "page",
        "queue-backlog",
        "More than 100 saga jobs wait: the workers are too few, stopped or stuck.",
    ),
    (
        "NoWorkers",
        "rq_workers == 0",
        "5m",
        "page",
        "queue-backlog",
        "No RQ worker is registered: no order is being processed.",
    ),
    (
        "PaymentProviderDown",
        'circuit_breaker_state{provider="payments"} == 2',
        "2m",
        "page",
        "payment-provider-down",
        "The payment provider's circuit breaker is open: captures fail fast.",
    ),
    (
        "RedisDown",
        "redis_up == 0",
        "1m",
        "page",
        "redis-down",
        "Redis does not answer: queues, rate limits and the cache are unavailable.",
    ),
)


def prometheus_rules(base_url: str = "") -> dict[str, Any]:
    """The rules file as a mapping: recording rules per objective and window, then alerts."""
    recording = [
        {"record": ratio_record(o, w), "expr": o.error_ratio_promql.format(window=w)}
        for o in OBJECTIVES
        for w in WINDOWS
    ]
    slo_alerts = [a for o in OBJECTIVES for a in _slo_alerts(o, base_url)]
    operations = [
        {
            "alert": name,
            "expr": expr,
            "for": hold,
            "labels": {"severity": severity},
            "annotations": {
                "summary": description.split(":")[0].rstrip("."),
                "description": description,
                "runbook_url": runbook_url(base_url, slug),
            },
        }
        for name, expr, hold, severity, slug, description in OPERATIONS_ALERTS
    ]
    return {
        "groups": [
            {"name": "orderprocessing-slo-recording", "interval": "30s", "rules": recording},
            {"name": "orderprocessing-slo-alerts", "rules": slo_alerts},
            {"name": "orderprocessing-operations-alerts", "rules": operations},
        ]
    }


def _panel(panel_id: int, title: str, targets: list[tuple[str, str]], unit: str, x: int, y: int,
           width: int = 12) -> dict[str, Any]:
    return {
        "id": panel_id,
        "type": "timeseries",
        "title": title,
        "datasource": {"type": "prometheus", "uid": "${datasource}"},
        "gridPos": {"h": 8, "w": width, "x": x, "y": y},
        "fieldConfig": {"defaults": {"unit": unit}, "overrides": []},
        "targets": [
            {"refId": chr(ord("A") + i), "expr": expr, "legendFormat": legend}
            for i, (expr, legend) in enumerate(targets)
        ],
    }


def grafana_dashboard() -> dict[str, Any]:
    """A Grafana dashboard: traffic, errors, latency, orders, saga, queues, and one row per SLO."""
    api = 'endpoint=~"/api/v1/.*"'
    specs = [
        ("Requests per second by endpoint",
         [("sum by (endpoint) (rate(http_requests_total[5m]))", "{{endpoint}}")], "reqps"),
        ("5xx ratio", [(f'sum(rate(http_requests_total{{{api},status=~"5.."}}[5m])) / '
                        f"sum(rate(http_requests_total{{{api}}}[5m]))", "5xx")], "percentunit"),
        ("API latency p50 / p95 / p99",
         [(f"histogram_quantile({q}, sum by (le) "
           f"(rate(http_request_duration_seconds_bucket{{{api}}}[5m])))", f"p{int(q * 100)}")
          for q in (0.5, 0.95, 0.99)], "s"),
        ("Orders per minute",
         [("sum(rate(orders_created_total[5m])) * 60", "created"),
          ("sum(rate(orders_completed_total[5m])) * 60", "completed"),
          ("sum by (reason) (rate(orders_failed_total[5m])) * 60", "failed {{reason}}")],
         "short"),
        ("Order processing time p95 (accepted to final)",
         [("histogram_quantile(0.95, sum by (le) "
           "(rate(order_processing_duration_seconds_bucket[5m])))", "p95")], "s"),
        ("Saga step duration p95",
         [("histogram_quantile(0.95, sum by (le, step) "
           "(rate(saga_step_duration_seconds_bucket[5m])))", "{{step}}")], "s"),
        ("Saga step retries per minute",
         [("sum by (step) (rate(saga_step_retries_total[5m])) * 60", "{{step}}")], "short"),
        ("Queue depth and workers",
         [("rq_queue_depth", "{{queue}}"), ("rq_workers", "workers")], "short"),
        ("Circuit breakers (0 closed, 1 half-open, 2 open)",
         [("circuit_breaker_state", "{{provider}}")], "short"),
        ("Webhook deliveries per minute",
         [("sum by (outcome) (rate(webhook_deliveries_total[5m])) * 60", "{{outcome}}")],
         "short"),
    ]
    panels = []
    for index, (title, targets, unit) in enumerate(specs):
        panels.append(_panel(index + 1, title, targets, unit, x=(index % 2) * 12,
                             y=(index // 2) * 8))
    y = (len(specs) + 1) // 2 * 8
    for objective in OBJECTIVES:
        budget = _budget(objective)
        panels.append(_panel(
            len(panels) + 1, f"SLO {objective.title}: burn rate",
            [(f"{ratio_record(objective, w)} / {budget}", w) for w in WINDOWS], "short", 0, y,
        ))
        panels.append(_panel(
            len(panels) + 1,
            f"SLO {objective.title}: error budget left (30 d, target {objective.target:.1%})",
            [(f"1 - {ratio_record(objective, '30d')} / {budget}", "budget left")],
            "percentunit", 12, y,
        ))
        y += 8
    return {
        "title": "Order processing",
        "uid": "orderprocessing",
        "tags": ["orderprocessing", "slo"],
        "timezone": "utc",
        "schemaVersion": 39,
        "refresh": "30s",
        "time": {"from": "now-6h", "to": "now"},
        "templating": {"list": [
            {"name": "datasource", "type": "datasource", "query": "prometheus",
             "label": "Prometheus"}
        ]},
        "panels": panels,
    }


def render_rules(base_url: str = "") -> str:
    header = "# Generated by `flask --app wsgi observability generate` from app/domain/slo.py.\n"
    return header + yaml.safe_dump(prometheus_rules(base_url), sort_keys=False, width=100)


def render_dashboard() -> str:
    return json.dumps(grafana_dashboard(), indent=2) + "\n"


def write_all(out_dir: Path, base_url: str = "") -> list[Path]:
    """Write the rules file and the dashboard under `out_dir`; the paths written."""
    written = []
    outputs = ((RULES_FILE, render_rules(base_url)), (DASHBOARD_FILE, render_dashboard()))
    for relative, text in outputs:
        path = out_dir / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
        written.append(path)
    return written
