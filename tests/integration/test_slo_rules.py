"""The generated Prometheus rules and Grafana dashboard: shipped, in sync, valid for promtool."""

import json
import shutil
import subprocess

import pytest
import yaml

from app.domain.slo import BURN_RATE_ALERTS, OBJECTIVES
from app.observability.rules import DASHBOARD_FILE, RULES_FILE, render_dashboard, render_rules
from config import PROJECT_ROOT

DEPLOY = PROJECT_ROOT / "deploy"
PROMTOOL = shutil.which("promtool")
RUNBOOK_SLUGS = {
    "high-error-rate", "slow-api", "slow-order-processing", "stuck-sagas", "queue-backlog",
    "payment-provider-down", "redis-down", "integrity-discrepancies",
}
needs_promtool = pytest.mark.skipif(PROMTOOL is None, reason="promtool is not installed")


def test_the_shipped_files_are_what_the_generator_writes_now():
    assert (DEPLOY / RULES_FILE).read_text() == render_rules(), (
        "run `flask --app wsgi observability generate`"
    )
    assert (DEPLOY / DASHBOARD_FILE).read_text() == render_dashboard()


def test_every_objective_has_its_three_burn_rate_alerts_each_with_a_runbook():
    groups = yaml.safe_load((DEPLOY / RULES_FILE).read_text())["groups"]
    alerts = [rule for group in groups for rule in group["rules"] if "alert" in rule]
    for objective in OBJECTIVES:
        mine = [a for a in alerts if a["labels"].get("slo") == objective.slug]
        assert len(mine) == len(BURN_RATE_ALERTS)
        assert {a["annotations"]["runbook_url"] for a in mine} == {
            f"/runbooks/{objective.runbook}"
        }
    for alert in alerts:
        slug = alert["annotations"]["runbook_url"].removeprefix("/runbooks/")
        assert slug in RUNBOOK_SLUGS, alert["alert"]
    fast = next(a for a in alerts if a["alert"] == "ApiHighErrorRateFastBurn")
    assert fast["expr"] == (
        "slo:api_availability:error_ratio_rate1h > (14.4 * 0.001)"
        " and slo:api_availability:error_ratio_rate5m > (14.4 * 0.001)"
    )


def test_runbook_links_can_be_absolute():
    assert "runbook_url: https://ops.example.com/runbooks/slow-api" in render_rules(
        "https://ops.example.com/"
    )


def test_the_dashboard_has_a_burn_rate_and_a_budget_panel_per_objective():
    dashboard = json.loads((DEPLOY / DASHBOARD_FILE).read_text())
    titles = [p["title"] for p in dashboard["panels"]]
    for objective in OBJECTIVES:
        assert f"SLO {objective.title}: burn rate" in titles
    exprs = [t["expr"] for p in dashboard["panels"] for t in p["targets"]]
    assert any("rq_queue_depth" in e for e in exprs)
    assert any("circuit_breaker_state" in e for e in exprs)


@needs_promtool
def test_promtool_accepts_the_rules_file(tmp_path):
    generated = tmp_path / "rules.yml"
    generated.write_text(render_rules("https://ops.example.com"))
    for path in (DEPLOY / RULES_FILE, generated):
        result = subprocess.run(  # noqa: S603
            [PROMTOOL, "check", "rules", str(path)], capture_output=True, text=True
        )
        assert result.returncode == 0, result.stdout + result.stderr
        assert "SUCCESS" in result.stdout


@needs_promtool
def test_the_fast_burn_alert_fires_in_promtools_rule_unit_test():
    test_file = DEPLOY / "prometheus" / "orderprocessing-rules.test.yml"
    result = subprocess.run(  # noqa: S603
        [PROMTOOL, "test", "rules", test_file.name], capture_output=True, text=True,
        cwd=test_file.parent,
    )
    assert result.returncode == 0, result.stdout + result.stderr
