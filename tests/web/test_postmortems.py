"""Postmortems on the Google SRE template, with action items that have owners and states."""

from __future__ import annotations

import re

from tests.web.knowledge_support import audit_entries, staff_client, submit

POSTMORTEM = {
    "title": "Checkout outage",
    "incident_date": "2026-11-20",
    "status": "draft",
    "summary": "Orders failed for **20 minutes**.",
    "impact": "150 orders failed.",
    "timeline": "| time | event |\n| --- | --- |\n| 10:00 | deploy |",
    "root_cause": "A migration locked `orders`.",
    "trigger": "Release 42.",
    "resolution": "Rolled back.",
    "detection": "Fast-burn alert.",
    "went_well": "Rollback took 2 minutes.",
    "went_wrong": "No canary.",
    "got_lucky": "Low traffic.",
}


def create(client, **changes) -> str:
    response = submit(client, "/postmortems/new", "/postmortems/new", {**POSTMORTEM, **changes})
    assert response.status_code == 302, response.get_data(as_text=True)
    return response.headers["Location"]


def test_operator_writes_a_postmortem_with_every_template_section(app):
    operator = staff_client(app, "operator")
    url = create(operator)
    page = operator.get(url).get_data(as_text=True)
    for heading in ("Summary", "Impact", "Timeline (UTC)", "Root cause", "Trigger", "Resolution",
                    "Detection", "What went well", "What went wrong", "Where we got lucky",
                    "Action items"):
        assert f"<h2>{heading}" in page, heading
    assert "<strong>20 minutes</strong>" in page and "<table>" in page  # Markdown table
    [entry] = audit_entries(app, "postmortem.create")
    assert entry.actor == operator.username and entry.after["title"] == "Checkout outage"
    listing = operator.get("/postmortems").get_data(as_text=True)
    assert "Checkout outage" in listing and "2026-11-20" in listing


def test_action_items_get_an_owner_and_move_through_states_audited(app):
    operator = staff_client(app, "operator")
    url = create(operator)
    response = submit(operator, url, url + "/action-items",
                      {"description": "Add a canary stage", "owner": "platform",
                       "kind": "prevent", "due_date": "2026-12-01"})
    assert response.status_code == 302
    page = operator.get(url).get_data(as_text=True)
    assert "Add a canary stage" in page and "platform" in page and "2026-12-01" in page
    [created] = audit_entries(app, "action_item.create")
    item_id = created.target_id
    response = submit(operator, url, f"{url}/action-items/{item_id}/state",
                      {"state": "done", "reason": "canary live"})
    assert response.status_code == 302
    [changed] = audit_entries(app, "action_item.state")
    assert (changed.before, changed.after, changed.reason) == (
        {"state": "open"}, {"state": "done"}, "canary live"
    )
    assert re.search(r"0 / 1", operator.get("/postmortems").get_data(as_text=True))


def test_editing_keeps_the_changed_fields_before_and_after(sqlite_app):
    operator = staff_client(sqlite_app, "operator")
    url = create(operator)
    response = submit(operator, url + "/edit", url + "/edit", {**POSTMORTEM, "status": "final"})
    assert response.status_code == 302
    [entry] = audit_entries(sqlite_app, "postmortem.update")
    assert (entry.before, entry.after) == ({"status": "draft"}, {"status": "final"})


def test_missing_summary_date_and_owner_get_form_messages(sqlite_app):
    operator = staff_client(sqlite_app, "operator")
    response = submit(operator, "/postmortems/new", "/postmortems/new",
                      {**POSTMORTEM, "summary": "", "incident_date": "not a date"})
    assert response.status_code == 400
    assert response.get_data(as_text=True).count('class="field-error"') >= 2
    url = create(operator)
    response = submit(operator, url, url + "/action-items",
                      {"description": "Do it", "owner": "", "kind": "prevent"})
    assert response.status_code == 400
    assert 'class="field-error"' in response.get_data(as_text=True)
    response = submit(operator, url, url + "/action-items/act_nope/state", {"state": "done"})
    assert response.status_code == 404


def test_viewer_reads_postmortems_but_cannot_change_them(sqlite_app):
    url = create(staff_client(sqlite_app, "operator"))
    viewer = staff_client(sqlite_app, "viewer")
    page = viewer.get(url).get_data(as_text=True)
    assert "Checkout outage" in page and "Add an action item" not in page and "Edit" not in page
    assert viewer.get("/postmortems/new").status_code == 403
    assert submit(viewer, url, "/postmortems/new", POSTMORTEM).status_code == 403
    assert submit(viewer, url, url + "/edit", POSTMORTEM).status_code == 403
    assert submit(viewer, url, url + "/action-items",
                  {"description": "x", "owner": "y", "kind": "prevent"}).status_code == 403
    assert len(audit_entries(sqlite_app, "postmortem.create")) == 1


def test_seeded_example_postmortem_has_owned_action_items(sqlite_app):
    from app.auth.actors import cli_actor
    from app.cli.knowledge_seed import seed_knowledge

    with sqlite_app.app_context():
        seed_knowledge(cli_actor())
    viewer = staff_client(sqlite_app, "viewer")
    listing = viewer.get("/postmortems").get_data(as_text=True)
    [url] = re.findall(r'href="(/postmortems/pm_\w+)"', listing)
    page = viewer.get(url).get_data(as_text=True)
    assert "Orders failed during a payment provider outage" in page
    assert page.count('<span class="badge open">open</span>') == 3


def test_a_date_that_does_not_parse_is_called_not_valid_not_missing(sqlite_app):
    operator = staff_client(sqlite_app, "operator")
    response = submit(operator, "/postmortems/new", "/postmortems/new",
                      {**POSTMORTEM, "incident_date": "20/11/2026"})
    assert response.status_code == 400
    page = response.get_data(as_text=True)
    assert "Not a valid date; write it as YYYY-MM-DD." in page
    assert "This field is required." not in page
    assert 'value="20/11/2026"' in page  # what was typed stays to be corrected
    missing = submit(operator, "/postmortems/new", "/postmortems/new",
                     {**POSTMORTEM, "incident_date": ""})
    assert "This field is required." in missing.get_data(as_text=True)
    url = create(operator)
    item = submit(operator, url, url + "/action-items",
                  {"description": "Add a canary", "owner": "ops", "kind": "prevent",
                   "due_date": "next friday"})
    assert item.status_code == 400
    assert "Not a valid date; write it as YYYY-MM-DD." in item.get_data(as_text=True)
    assert audit_entries(sqlite_app, "postmortem.create") and not audit_entries(
        sqlite_app, "action_item.create")
