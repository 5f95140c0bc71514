"""CSRF on the dashboard: a missing or stale token is a form error on the page the user filled in
(input kept, "This form expired"), and no state-changing POST goes through without a valid token.

The walk is generated from app.url_map: a new POST route fails here until it has a case below.
"""

from __future__ import annotations

import time

import itsdangerous
import pytest
from werkzeug.routing import AnyConverter

from tests.conftest import PASSWORD
from tests.web.dashboard_support import audit_entries, page_token, place, shop, staff_client

FORM_EXPIRED = "This form expired; check and submit again."
REASON = "checking CSRF"

# Path arguments named the same on several routes but meaning different things.
ARGS_BY_ENDPOINT = {
    "web.queue_action": {"name": "default"},
    "web.flag_update": {"name": "payment_hold"},
}
# A complete, valid body for each POST endpoint: with a token it succeeds (checked below), so
# the token alone is what the request without one lacks.
BODIES = {
    "web.login": lambda w: {"username": w["admin"], "password": PASSWORD},
    "web.admin_create_user": lambda w: {"username": "csrf-new", "password": PASSWORD,
                                        "role": "viewer"},
    "web.admin_user_action": lambda w: {"role": "operator", "reason": REASON},
    "web.admin_create_merchant": lambda w: {"name": "CSRF Co"},
    "web.admin_create_api_key": lambda w: {"name": "csrf key", "sent_once": "csrf-walk-0123456789"},
    "web.admin_revoke_api_key": lambda w: {"reason": REASON},
    "web.chaos_update": lambda w: {
        "payment_failure_rate": "0.1", "payment_latency_ms": "0", "shipping_failure_rate": "0",
        "shipping_latency_ms": "0", "reason": REASON, "apply": "Apply"},
    "web.flag_update": lambda w: {"payment_hold-enabled": "y",
                                  "payment_hold-rollout_percentage": "100",
                                  "payment_hold-reason": REASON},
    "web.kb_new": lambda w: {"title": "Kept title", "issue": "seen", "resolution": "fixed"},
    "web.kb_edit": lambda w: {"title": "Kept title", "issue": "seen", "resolution": "fixed"},
    "web.order_action": lambda w: {"confirm": "y", "reason": REASON},
    "web.queue_action": lambda w: {"confirm": "y", "reason": REASON},
    "web.postmortem_edit": lambda w: {"title": "Kept title", "incident_date": "2024-05-01",
                                      "status": "draft", "summary": "what happened"},
    "web.postmortem_add_item": lambda w: {"description": "add an alert", "owner": "ops",
                                          "kind": "prevent"},
    "web.postmortem_item_state": lambda w: {"state": "done", "reason": REASON},
    "web.runbook_new": lambda w: {"slug": "csrf-new-runbook", "title": "Kept title",
                                  "summary": "when", "steps": "## Look\nat it"},
    "web.runbook_edit": lambda w: {"title": "Kept title", "summary": "when",
                                   "steps": "## Look\nat it"},
    "web.runbook_start_run": lambda w: {"reason": REASON},
    "web.runbook_tick": lambda w: {"note": "seen"},
    "web.runbook_finish": lambda w: {"outcome": "resolved", "notes": "done"},
}
# Walked on its own (tests/web/test_login_logout.py): the walk's admin must stay logged in.
NO_TOKEN_NEEDED = {"web.logout"}
UNSAFE = {"POST", "PUT", "PATCH", "DELETE"}


def _world(app, admin_name: str) -> dict:
    """Real objects for every path argument, so each request reaches its form (not a 404)."""
    from app.auth.actors import cli_actor
    from app.services import accounts, flags, knowledge, postmortems, runbooks

    api, merchant_id, headers = shop(app)
    order_id = place(api, headers)
    actor = cli_actor()
    with app.app_context():
        flags.ensure_builtin_flags(actor)
        target = accounts.create_user("csrf-target", PASSWORD, "viewer")
        key, _ = accounts.create_api_key(merchant_id, "csrf-key")
        article = knowledge.create_article(
            knowledge.ArticleInput(title="A", issue="i", resolution="r"), actor)
        runbooks.create_runbook("csrf-runbook", "R", "s", "## One\nstep\n## Two\nstep", actor)
        run = runbooks.start_run("csrf-runbook", "drill", actor)
        import datetime as dt

        postmortem = postmortems.create_postmortem(postmortems.PostmortemInput(
            title="P", incident_date=dt.date(2024, 5, 1), summary="s"), actor)
        item = postmortems.add_action_item(
            postmortem.id, postmortems.ActionItemInput(description="d", owner="o"), actor)
        return {
            "admin": admin_name, "order_id": order_id, "user_id": target.id,
            "merchant_id": merchant_id, "key_id": key.id, "article_id": article.id,
            "slug": "csrf-runbook", "run_id": run.id, "position": 1,
            "postmortem_id": postmortem.id, "item_id": item.id,
        }


def _unsafe_requests(app, world: dict) -> list[tuple[str, str, str]]:
    """(endpoint, method, path) of every state-changing dashboard request, `any()` expanded."""
    adapter = app.url_map.bind("localhost")
    found = []
    for rule in app.url_map.iter_rules():
        if not rule.endpoint.startswith("web."):
            continue
        variants = [dict(ARGS_BY_ENDPOINT.get(rule.endpoint, {}))]
        for arg in rule.arguments:
            converter = rule._converters[arg]
            if isinstance(converter, AnyConverter):
                variants = [{**v, arg: c} for v in variants for c in converter.items]
            elif arg not in variants[0]:
                variants = [{**v, arg: world[arg]} for v in variants]
        for values in variants:
            path = adapter.build(rule.endpoint, values)
            for method in sorted(rule.methods & UNSAFE):
                found.append((rule.endpoint, method, path))
    return sorted(set(found))


def test_no_dashboard_state_change_goes_through_without_a_valid_token(sqlite_app):
    admin = staff_client(sqlite_app, "admin")
    world = _world(sqlite_app, admin.username)
    requests = _unsafe_requests(sqlite_app, world)
    missing = {endpoint for endpoint, _, _ in requests} - set(BODIES) - NO_TOKEN_NEEDED
    assert not missing, f"add a body for {missing} to BODIES"
    failures = []
    for endpoint, method, path in requests:
        if endpoint in NO_TOKEN_NEEDED:
            continue
        data = BODIES[endpoint](world)
        before = len(audit_entries(sqlite_app, None))
        for token in (None, "not-a-token"):
            sent = dict(data)
            if token:
                sent.update({"csrf_token": token, "payment_hold-csrf_token": token})
            response = admin.open(path, method=method, data=sent)
            body = response.get_data(as_text=True)
            if response.status_code != 400 or FORM_EXPIRED not in body:
                failures.append(f"{method} {path} token={token}: {response.status_code}")
            if len(audit_entries(sqlite_app, None)) != before:
                failures.append(f"{method} {path} token={token}: changed something")
        # The same request with the session's token goes through: the body was complete.
        token = page_token(admin)
        response = admin.open(path, method=method, data={
            **data, "csrf_token": token, "payment_hold-csrf_token": token})
        if response.status_code >= 400:
            failures.append(f"{method} {path} with a token: {response.status_code}")
    assert not failures, "\n".join(failures)


def _later(monkeypatch, seconds: int) -> None:
    """From now on, itsdangerous (CSRF tokens) sees the clock `seconds` later."""
    monkeypatch.setattr(itsdangerous.timed.TimestampSigner, "get_timestamp",
                        lambda self: int(time.time()) + seconds)


@pytest.fixture
def nine_hours_later(sqlite_app, monkeypatch):
    """Jump past WTF_CSRF_TIME_LIMIT (8 h): tokens on pages rendered before have expired."""
    limit = sqlite_app.config["WTF_CSRF_TIME_LIMIT"]
    return lambda: _later(monkeypatch, limit + 3600)


def test_an_expired_form_is_shown_again_with_what_was_typed(sqlite_app, nine_hours_later):
    from tests.helpers import csrf_token_from

    operator = staff_client(sqlite_app, "operator")
    token = csrf_token_from(operator.get("/kb/new").get_data(as_text=True))
    nine_hours_later()
    response = operator.post("/kb/new", data={
        "csrf_token": token, "title": "Webhook retries pile up",
        "issue": "The webhook queue grows after a provider outage.",
        "resolution": "Requeue the failed jobs from /queues.", "tags": "webhooks"})
    assert response.status_code == 400
    page = response.get_data(as_text=True)
    assert FORM_EXPIRED in page and "CSRF" not in page
    assert 'value="Webhook retries pile up"' in page
    assert "The webhook queue grows after a provider outage." in page
    assert "Requeue the failed jobs from /queues." in page
    assert audit_entries(sqlite_app, "kb.create") == []
    # The page came back with a fresh token: sending it again saves the article.
    again = operator.post("/kb/new", data={
        "csrf_token": csrf_token_from(page), "title": "Webhook retries pile up",
        "issue": "i", "resolution": "r"})
    assert again.status_code == 302


def test_an_expired_confirmation_keeps_the_reason(sqlite_app, nine_hours_later):
    from tests.helpers import csrf_token_from

    operator = staff_client(sqlite_app, "operator")
    path = "/queues/sagas/pause"
    token = csrf_token_from(operator.get(path).get_data(as_text=True))
    nine_hours_later()
    response = operator.post(path, data={"csrf_token": token, "confirm": "y",
                                         "reason": "INC-42 provider down"})
    assert response.status_code == 400
    page = response.get_data(as_text=True)
    assert FORM_EXPIRED in page and "INC-42 provider down" in page
    assert audit_entries(sqlite_app, "queue.pause") == []


def test_an_expired_login_form_keeps_the_username(sqlite_app, nine_hours_later):
    from tests.helpers import create_user, csrf_token_from

    create_user(sqlite_app, "late-shift", "viewer")
    client = sqlite_app.test_client()
    token = csrf_token_from(client.get("/login").get_data(as_text=True))
    nine_hours_later()
    response = client.post("/login", data={"csrf_token": token, "username": "late-shift",
                                           "password": PASSWORD})
    assert response.status_code == 400
    page = response.get_data(as_text=True)
    assert FORM_EXPIRED in page and 'value="late-shift"' in page
    assert client.get("/").status_code == 302  # not logged in


def test_a_post_over_https_from_another_site_is_refused(sqlite_app):
    admin = staff_client(sqlite_app, "admin")
    token = page_token(admin, "/admin/merchants")
    data = {"csrf_token": token, "name": "Cross Site Co"}
    foreign = admin.post("/admin/merchants", data=data, base_url="https://localhost",
                         headers={"Referer": "https://evil.example/"})
    assert foreign.status_code == 400
    assert audit_entries(sqlite_app, "merchant.create") == []
    own = admin.post("/admin/merchants", data=data, base_url="https://localhost",
                     headers={"Referer": "https://localhost/admin/merchants"})
    assert own.status_code == 302
