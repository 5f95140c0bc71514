"""Runbooks: the seeded set for this system's failure modes, and runs recorded step by step."""

from __future__ import annotations

import re
from urllib.parse import urlsplit

import pytest

from tests.web.knowledge_support import audit_entries, staff_client, submit

CONTRACT_SLUGS = {
    "stuck-sagas", "payment-provider-down", "queue-backlog", "redis-down", "database-failover",
    "restore-from-backup", "secret-rotation", "deploy-and-rollback", "high-error-rate",
    "slow-api", "slow-order-processing", "integrity-discrepancies",
}


def seed(app) -> dict:
    from app.auth.actors import cli_actor
    from app.cli.knowledge_seed import seed_knowledge

    with app.app_context():
        return seed_knowledge(cli_actor())


def test_seeding_creates_every_contract_runbook_once(app):
    first = seed(app)
    assert first == {"runbooks": 12, "articles": 5, "postmortems": 1}
    assert seed(app) == {"runbooks": 0, "articles": 0, "postmortems": 0}
    viewer = staff_client(app, "viewer")
    listing = viewer.get("/runbooks").get_data(as_text=True)
    assert set(re.findall(r'href="/runbooks/([a-z-]+)"', listing)) == CONTRACT_SLUGS


def test_every_seeded_step_leads_somewhere_real(sqlite_app):
    """Each step has a command or a link, and every link is a page of this dashboard."""
    from app.cli.runbook_content import RUNBOOKS

    seed(sqlite_app)
    urls = sqlite_app.url_map.bind("localhost")
    viewer = staff_client(sqlite_app, "viewer")
    for spec in RUNBOOKS:
        page = viewer.get(f"/runbooks/{spec.slug}")
        assert page.status_code == 200, spec.slug
        assert page.get_data(as_text=True).count('<li class="rb-step') == len(spec.steps)
        for step in spec.steps:
            assert step.command or step.link_path or step.body, (spec.slug, step.title)
            if step.link_path:
                urls.match(urlsplit(step.link_path).path, method="GET")  # raises if no route
    # A command is shown for copying, escaped.
    page = viewer.get("/runbooks/stuck-sagas").get_data(as_text=True)
    assert "flask --app wsgi check-integrity" in page


@pytest.fixture
def seeded_operator(app):
    seed(app)
    return app, staff_client(app, "operator")


def start_run(client, slug="redis-down", reason="alert RedisDown firing"):
    page = f"/runbooks/{slug}"
    response = submit(client, page, page + "/runs", {"reason": reason})
    assert response.status_code == 302, response.get_data(as_text=True)
    return response.headers["Location"]


def test_a_run_records_who_ticked_which_step_and_how_it_ended(seeded_operator):
    app, operator = seeded_operator
    run_url = start_run(operator)
    for position in (1, 3):
        step_url = f"{run_url}/steps/{position}"
        response = submit(operator, run_url, step_url, {"note": f"ok {position}"})
        assert response.status_code == 302
    page = operator.get(run_url).get_data(as_text=True)
    assert page.count(f"Done by {operator.username}") == 2
    assert "2 of 6 steps done" in page
    response = submit(operator, run_url, f"{run_url}/finish",
                      {"outcome": "resolved", "notes": "Redis restarted"})
    assert response.status_code == 302
    page = operator.get(run_url).get_data(as_text=True)
    assert "Redis restarted" in page and "Mark step" not in page

    [started] = audit_entries(app, "runbook_run.start")
    assert started.actor == operator.username and started.reason == "alert RedisDown firing"
    ticks = audit_entries(app, "runbook_run.tick")
    assert [t.after["step"] for t in ticks] == [1, 3]
    [finished] = audit_entries(app, "runbook_run.finish")
    assert finished.after["outcome"] == "resolved"
    assert finished.after["skipped_steps"] == [2, 4, 5, 6]
    listing = operator.get("/runbooks").get_data(as_text=True)
    assert "resolved" in listing


def test_ticking_twice_records_one_tick(seeded_operator):
    app, operator = seeded_operator
    run_url = start_run(operator)
    for _ in range(2):
        response = submit(operator, run_url, f"{run_url}/steps/2", {"note": "first"})
    assert len(audit_entries(app, "runbook_run.tick")) == 1
    page = operator.get(response.headers["Location"]).get_data(as_text=True)
    assert f"Step 2 was already marked done by {operator.username}; nothing changed." in page


def test_a_finished_run_takes_no_more_ticks(seeded_operator):
    app, operator = seeded_operator
    run_url = start_run(operator)
    submit(operator, run_url, f"{run_url}/finish", {"outcome": "abandoned"})
    response = submit(operator, "/runbooks", f"{run_url}/steps/1", {})
    assert response.status_code == 302
    assert "this run is finished" in operator.get(response.headers["Location"]).get_data(
        as_text=True
    )
    assert audit_entries(app, "runbook_run.tick") == []


def test_unknown_step_and_unknown_run_are_refused(sqlite_app):
    seed(sqlite_app)
    operator = staff_client(sqlite_app, "operator")
    run_url = start_run(operator)
    response = submit(operator, run_url, f"{run_url}/steps/99", {})
    assert "no such step" in operator.get(response.headers["Location"]).get_data(as_text=True)
    unknown_run = "/runbooks/redis-down/runs/rbr_nope/steps/1"
    assert submit(operator, run_url, unknown_run, {}).status_code == 404
    assert operator.get("/runbooks/no-such-runbook").status_code == 404


def test_starting_a_run_needs_a_reason(sqlite_app):
    seed(sqlite_app)
    operator = staff_client(sqlite_app, "operator")
    response = submit(operator, "/runbooks/stuck-sagas", "/runbooks/stuck-sagas/runs",
                      {"reason": "  "})
    assert response.status_code == 400
    assert 'class="field-error"' in response.get_data(as_text=True)
    assert audit_entries(sqlite_app, "runbook_run.start") == []


def test_viewer_reads_runbooks_and_runs_but_cannot_start_or_tick(sqlite_app):
    seed(sqlite_app)
    run_url = start_run(staff_client(sqlite_app, "operator"))
    viewer = staff_client(sqlite_app, "viewer")
    page = viewer.get("/runbooks/redis-down").get_data(as_text=True)
    assert "Start run" not in page
    assert "Mark step" not in viewer.get(run_url).get_data(as_text=True)
    assert submit(viewer, run_url, "/runbooks/redis-down/runs", {"reason": "x"}).status_code == 403
    assert submit(viewer, run_url, f"{run_url}/steps/1", {}).status_code == 403
    assert submit(viewer, run_url, f"{run_url}/finish", {"outcome": "resolved"}).status_code == 403
    assert audit_entries(sqlite_app, "runbook_run.tick") == []


def test_tick_without_csrf_token_is_refused(sqlite_app):
    seed(sqlite_app)
    operator = staff_client(sqlite_app, "operator")
    run_url = start_run(operator)
    assert operator.post(f"{run_url}/steps/1", data={}).status_code == 400
    assert audit_entries(sqlite_app, "runbook_run.tick") == []


def test_operator_edits_steps_and_the_audit_log_keeps_the_old_version(app):
    seed(app)
    operator = staff_client(app, "operator")
    edit = "/runbooks/redis-down/edit"
    form_page = operator.get(edit).get_data(as_text=True)
    assert "## Confirm with the readiness probe" in form_page  # the steps, as editable text
    steps = "## Ping Redis\n$ redis-cli ping\n-> /queues Queues\n\n## Reconcile\nMust exit 0."
    response = submit(operator, edit, edit, {"title": "Redis down", "summary": "Redis is gone.",
                                             "steps": steps})
    assert response.status_code == 302
    page = operator.get("/runbooks/redis-down").get_data(as_text=True)
    assert page.count('<li class="rb-step') == 2 and "redis-cli ping" in page
    [entry] = audit_entries(app, "runbook.update")
    assert entry.actor == operator.username
    assert entry.before["steps"].startswith("## Confirm with the readiness probe")
    assert entry.after == {"title": "Redis down", "summary": "Redis is gone.", "steps": steps}


def test_a_new_runbook_gets_a_permanent_slug(sqlite_app):
    seed(sqlite_app)
    operator = staff_client(sqlite_app, "operator")
    data = {"slug": "webhook-backlog", "title": "Webhook backlog", "summary": "Deliveries lag.",
            "steps": "## Look at the queue\n-> /queues Queues"}
    response = submit(operator, "/runbooks/new", "/runbooks/new", data)
    assert response.headers["Location"].endswith("/runbooks/webhook-backlog")
    again = submit(operator, "/runbooks/new", "/runbooks/new", {**data, "title": "Other"})
    assert again.status_code == 400 and "a runbook with this slug exists" in again.get_data(
        as_text=True
    )
    [entry] = audit_entries(sqlite_app, "runbook.create")[-1:]
    assert entry.target_id == "webhook-backlog" and entry.source == "web"


def test_step_text_mistakes_get_a_form_message_and_change_nothing(sqlite_app):
    seed(sqlite_app)
    operator = staff_client(sqlite_app, "operator")
    edit = "/runbooks/redis-down/edit"
    response = submit(operator, edit, edit, {"title": "Redis down", "summary": "x",
                                             "steps": "## Step\n-> javascript:alert(1) x"})
    assert response.status_code == 400
    assert "line 2: one link per step" in response.get_data(as_text=True)
    assert audit_entries(sqlite_app, "runbook.update") == []
    assert operator.get("/runbooks/redis-down").get_data(as_text=True).count(
        '<li class="rb-step') == 6
    viewer = staff_client(sqlite_app, "viewer")
    assert viewer.get(edit).status_code == 403
    assert submit(viewer, "/runbooks", edit, {"title": "x", "summary": "x",
                                              "steps": "## x"}).status_code == 403


def stored_runbook(app, slug="redis-down") -> tuple[str, str, str]:
    """(title, summary, steps text) of the runbook as saved."""
    from app.services import runbooks

    with app.app_context():
        runbook = runbooks.get_runbook(slug)
        return runbook.title, runbook.summary, runbooks.steps_text(runbook)


VALID_EDIT = {"title": "Redis down", "summary": "Redis is gone.",
              "steps": "## Ping\n$ redis-cli ping"}


@pytest.mark.parametrize(
    ("missing", "message"),
    [
        ("steps", "a runbook needs at least one &#39;## Step&#39;"),
        ("title", "This field is required."),
        ("summary", "This field is required."),
    ],
)
def test_an_edit_missing_a_field_is_refused_and_changes_nothing(sqlite_app, missing, message):
    """A POST without a field is shown again with that field's error, never saved with the
    stored value in its place (the form once took `steps` from the runbook's step rows: 500)."""
    seed(sqlite_app)
    before = stored_runbook(sqlite_app)
    operator = staff_client(sqlite_app, "operator")
    edit = "/runbooks/redis-down/edit"
    data = {k: v for k, v in VALID_EDIT.items() if k != missing}
    response = submit(operator, edit, edit, data)
    assert response.status_code == 400
    body = response.get_data(as_text=True)
    assert f'<p class="field-error">{message}</p>' in body
    assert "Traceback" not in body
    assert stored_runbook(sqlite_app) == before
    assert audit_entries(sqlite_app, "runbook.update") == []


@pytest.mark.parametrize("steps", ["", "  \r\n  "])
def test_an_edit_with_empty_steps_is_refused(sqlite_app, steps):
    seed(sqlite_app)
    before = stored_runbook(sqlite_app)
    operator = staff_client(sqlite_app, "operator")
    edit = "/runbooks/redis-down/edit"
    response = submit(operator, edit, edit, {**VALID_EDIT, "steps": steps})
    assert response.status_code == 400
    assert "a runbook needs at least one &#39;## Step&#39;" in response.get_data(as_text=True)
    assert stored_runbook(sqlite_app) == before
    assert audit_entries(sqlite_app, "runbook.update") == []


def test_a_new_runbook_without_steps_is_refused(sqlite_app):
    operator = staff_client(sqlite_app, "operator")
    data = {"slug": "webhook-backlog", "title": "Webhook backlog", "summary": "Deliveries lag."}
    response = submit(operator, "/runbooks/new", "/runbooks/new", data)
    assert response.status_code == 400
    assert "a runbook needs at least one &#39;## Step&#39;" in response.get_data(as_text=True)
    assert audit_entries(sqlite_app, "runbook.create") == []


def test_a_refused_edit_then_a_valid_one_saves(app):
    seed(app)
    admin = staff_client(app, "admin")
    edit = "/runbooks/redis-down/edit"
    refused = submit(admin, edit, edit, {"title": "Redis down", "summary": "Redis is gone."})
    assert refused.status_code == 400
    response = submit(admin, edit, edit, VALID_EDIT)
    assert response.status_code == 302
    assert response.headers["Location"].endswith("/runbooks/redis-down")
    assert stored_runbook(app) == ("Redis down", "Redis is gone.", VALID_EDIT["steps"])
    [entry] = audit_entries(app, "runbook.update")
    assert entry.actor == admin.username and entry.after["steps"] == VALID_EDIT["steps"]


def test_steps_that_are_not_text_are_a_field_error_not_a_crash(sqlite_app):
    from app.auth.actors import cli_actor
    from app.domain.errors import ValidationFailed
    from app.domain.runbooks import parse_steps
    from app.services import runbooks

    seed(sqlite_app)
    for not_text in (None, ["## Step"], b"## Step"):
        with pytest.raises(ValidationFailed) as refused:
            parse_steps(not_text)
        assert [e.field for e in refused.value.errors] == ["steps"]
    with sqlite_app.app_context():
        runbook = runbooks.get_runbook("redis-down")
        with pytest.raises(ValidationFailed):
            runbooks.update_runbook("redis-down", "T", "S", runbook.steps, cli_actor())
    assert stored_runbook(sqlite_app)[2].startswith("## Confirm with the readiness probe")
