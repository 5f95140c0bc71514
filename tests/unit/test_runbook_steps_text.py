"""The plain-text step format staff edit runbooks in."""

from __future__ import annotations

import pytest

from app.cli.runbook_content import RUNBOOKS
from app.domain.errors import ValidationFailed
from app.domain.runbooks import StepSpec, check_slug, format_steps, parse_steps


@pytest.mark.parametrize("spec", RUNBOOKS, ids=lambda spec: spec.slug)
def test_every_seeded_runbook_survives_a_round_trip_through_the_editor(spec):
    assert parse_steps(format_steps(spec.steps)) == list(spec.steps)


def test_commands_links_and_text_are_told_apart():
    text = (
        "## Check workers\nEvery worker shows a **heartbeat**.\n\nIf not, start one.\n"
        "$ redis-cli ping\n$ .venv/bin/python -m worker\n-> /queues Queues and workers\n\n"
        "## Reconcile\n$ flask --app wsgi check-integrity\n"
    )
    assert parse_steps(text) == [
        StepSpec("Check workers", "Every worker shows a **heartbeat**.\n\nIf not, start one.",
                 "redis-cli ping\n.venv/bin/python -m worker", "/queues", "Queues and workers"),
        StepSpec("Reconcile", "", "flask --app wsgi check-integrity"),
    ]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "at least one"),
        ("text before any step\n## Step", "line 1"),
        ("## Step\n-> javascript:alert(1) x", "line 2"),
        ("## Step\n-> //evil.example/x", "line 2"),
        ("## Step\n-> /a\n-> /b", "line 3"),
        ("## \nbody", "title"),
        ("## s\n" * 41, "at most 40"),
    ],
)
def test_mistakes_are_named(text, message):
    with pytest.raises(ValidationFailed) as failed:
        parse_steps(text)
    assert message in str(failed.value)


@pytest.mark.parametrize("slug", ["Redis", "redis down", "-x", "x-", "a--b", "", "a" * 81])
def test_bad_slugs_are_refused(slug):
    with pytest.raises(ValidationFailed):
        check_slug(slug)


def test_good_slug_is_kept():
    assert check_slug(" slow-order-processing ") == "slow-order-processing"


def test_alerts_a_runbook_names_are_alerts_the_shipped_rules_define():
    import re

    from app.observability.rules import prometheus_rules

    alerts = {rule["alert"] for group in prometheus_rules()["groups"]
              for rule in group["rules"] if "alert" in rule}
    for spec in RUNBOOKS:
        text = spec.summary + "".join(step.title + step.body for step in spec.steps)
        named = set(re.findall(r"\*([A-Z][a-z]+[A-Z][A-Za-z]+)\*", text))
        assert named <= alerts, (spec.slug, named - alerts)
