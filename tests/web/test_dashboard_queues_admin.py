"""Queues (failed jobs, requeue/delete, pause honoured by workers), admin pages, the audit log."""

from __future__ import annotations

from tests.helpers import drain_queues
from tests.web.dashboard_support import audit_entries, place, post_form, shop, staff_client


def _confirm(client, path: str, reason: str = "incident INC-9 cleanup", **extra):
    return post_form(client, path, {"confirm": "y", "reason": reason, **extra}, page=path)


def _fail_a_job(app) -> str:
    """A job that raises in the real worker (int('not a number')), left in the failed registry."""
    with app.app_context():
        job = app.extensions["job_queue"].queue("default").enqueue("builtins.int", "not a number")
    drain_queues(app)
    return job.id


def test_queues_page_lists_failed_jobs_with_their_error_and_operators_requeue_and_delete(app):
    job_id = _fail_a_job(app)
    operator = staff_client(app, "operator")
    page = operator.get("/queues").get_data(as_text=True)
    assert job_id in page and "ValueError: invalid literal for int()" in page

    response = _confirm(operator, f"/queues/default/requeue?job_id={job_id}", job_id=job_id)
    assert response.status_code == 302
    with app.app_context():
        assert app.extensions["job_queue"].queue("default").count == 1
    drain_queues(app)  # fails again
    assert _confirm(operator, "/queues/default/delete").status_code == 302
    page = operator.get("/queues").get_data(as_text=True)
    assert job_id not in page
    requeued = audit_entries(app, "queue.requeue_failed")[0]
    deleted = audit_entries(app, "queue.delete_failed")[0]
    assert requeued.before == {"job_ids": [job_id]} and deleted.after == {"count": 1}
    assert deleted.actor == operator.username and deleted.reason == "incident INC-9 cleanup"


def test_a_viewer_sees_queues_but_has_no_actions(sqlite_app):
    _fail_a_job(sqlite_app)
    viewer = staff_client(sqlite_app, "viewer")
    page = viewer.get("/queues").get_data(as_text=True)
    assert "ValueError" in page and "Requeue" not in page and "Pause" not in page
    assert viewer.get("/queues/default/requeue").status_code == 403


def test_a_paused_queue_is_not_worked_until_resumed(app):
    from app.services import orders

    api, _, headers = shop(app)
    operator = staff_client(app, "operator")
    assert _confirm(operator, "/queues/sagas/pause").status_code == 302
    # Pausing it again (another tab) changes nothing, says so, and is not audited twice.
    again = _confirm(operator, "/queues/sagas/pause")
    assert "Queue sagas was paused already; nothing changed." in operator.get(
        again.headers["Location"]).get_data(as_text=True)
    assert len(audit_entries(app, "queue.pause")) == 1
    order_id = place(api, headers)
    drain_queues(app)  # the real worker skips the paused queue
    with app.app_context():
        assert orders.get_order(order_id).status == "pending"
        assert app.extensions["job_queue"].queue("sagas").count == 1
    assert "paused" in operator.get("/queues").get_data(as_text=True)
    # An operator retrying the waiting saga is told why nothing happens yet.
    retried = _confirm(operator, f"/orders/{order_id}/retry")
    flashed = operator.get(retried.headers["Location"]).get_data(as_text=True)
    assert "The sagas queue is paused: nothing runs until it is resumed" in flashed
    assert _confirm(operator, "/queues/sagas/resume").status_code == 302
    drain_queues(app)
    with app.app_context():
        assert orders.get_order(order_id).status == "completed"
    assert [e.action for e in audit_entries(app, None)][:3] == [
        "queue.resume", "order.retry_saga", "queue.pause"]


def test_admin_creates_a_user_changes_the_role_and_disables_them(app):
    from tests.conftest import PASSWORD
    from tests.helpers import web_login

    admin = staff_client(app, "admin")
    response = post_form(admin, "/admin/users", {
        "username": "night-shift", "password": PASSWORD, "role": "viewer"}, page="/admin/users")
    assert response.status_code == 302
    from app.services import accounts

    with app.app_context():
        user = next(u for u in accounts.list_users() if u.username == "night-shift")
    short = post_form(admin, "/admin/users", {
        "username": "x2", "password": "short", "role": "viewer"}, page="/admin/users")
    assert short.status_code == 400
    promoted = post_form(admin, f"/admin/users/{user.id}/role",
                         {"role": "operator", "reason": "promoted"}, page="/admin/users")
    assert promoted.status_code == 302
    assert "User night-shift is now operator." in admin.get(promoted.headers["Location"]).get_data(
        as_text=True)
    assert post_form(admin, f"/admin/users/{user.id}/disable",
                     {"reason": "left the team"}, page="/admin/users").status_code == 302
    assert web_login(app.test_client(), "night-shift").status_code == 401
    role = audit_entries(app, "user.change_role")[0]
    assert role.before == {"role": "viewer"} and role.after == {"role": "operator"}
    assert audit_entries(app, "user.disable")[0].reason == "left the team"
    # An admin cannot lock themselves out.
    with app.app_context():
        me = next(u for u in accounts.list_users() if u.username == admin.username)
    assert post_form(admin, f"/admin/users/{me.id}/disable", {"reason": "oops"},
                     page="/admin/users").status_code == 409


def test_admin_creates_a_merchant_and_a_key_shown_once_then_revokes_it(sqlite_app):
    admin = staff_client(sqlite_app, "admin")
    assert post_form(admin, "/admin/merchants", {"name": "Night Market"},
                     page="/admin/merchants").status_code == 302
    from app.services import accounts

    with sqlite_app.app_context():
        merchant = next(m for m, _ in accounts.list_merchants_with_keys()
                        if m.name == "Night Market")
    import re

    page = admin.get("/admin/merchants").get_data(as_text=True)
    sent_once = re.search(r'name="sent_once" value="([^"]+)"', page)[1]
    form = {"name": "checkout", "sent_once": sent_once}
    created = post_form(admin, f"/admin/merchants/{merchant.id}/api-keys", form,
                        page="/admin/merchants")
    assert created.status_code == 201 and created.headers["Cache-Control"] == "no-store"
    # The key's name stays out of the "new merchant" box (both fields are called `name`).
    assert 'value="checkout"' not in created.get_data(as_text=True)

    plain = re.search(r'<code class="secret">([^<]+)</code>', created.get_data(as_text=True))[1]
    # The browser's reload posts the same form again: no second key, and the page says why.
    again = post_form(admin, f"/admin/merchants/{merchant.id}/api-keys", form,
                      page="/admin/merchants")
    assert again.status_code == 409 and "already sent" in again.get_data(as_text=True)
    assert '<code class="secret">' not in again.get_data(as_text=True)
    with sqlite_app.app_context():
        assert len(accounts.list_merchants_with_keys()[0][1]) == 1
    api = sqlite_app.test_client()
    assert api.get("/api/v1/products", headers={"X-API-Key": plain}).status_code == 200
    assert plain not in admin.get("/admin/merchants").get_data(as_text=True)

    with sqlite_app.app_context():
        key = accounts.list_merchants_with_keys()[0][1][0]
    assert post_form(admin, f"/admin/api-keys/{key.id}/revoke", {"reason": "leaked in a log"},
                     page="/admin/merchants").status_code == 302
    assert api.get("/api/v1/products", headers={"X-API-Key": plain}).status_code == 401
    assert audit_entries(sqlite_app, "api_key.revoke")[0].reason == "leaked in a log"


def test_audit_page_filters_entries_and_shows_before_after_and_reason(sqlite_app):
    from app.services import flags

    with sqlite_app.app_context():
        flags.ensure_builtin_flags()
    admin = staff_client(sqlite_app, "admin")
    post_form(admin, "/flags/payment_hold", {
        "payment_hold-enabled": "y", "payment_hold-rollout_percentage": "100",
        "payment_hold-reason": "provider down"}, page="/flags")
    page = admin.get("/audit?action=flag.update").get_data(as_text=True)
    assert "provider down" in page and admin.username in page
    assert '"enabled": false' in page and '"enabled": true' in page
    assert "user.create" not in page  # filtered out
    # An action family: "flag" is not one ("flag.update" is its own), "user" finds user.create.
    assert "user.create" in admin.get("/audit?action=user").get_data(as_text=True)
    assert "provider down" not in admin.get("/audit?action=flag_").get_data(as_text=True)
    assert "provider down" in admin.get("/audit?action=flag").get_data(as_text=True)
    assert "user.create" in admin.get("/audit").get_data(as_text=True)
    assert admin.get("/audit?cursor=garbage").status_code == 400


def test_audit_page_filters_by_utc_days_and_refuses_a_backwards_range(sqlite_app):
    import datetime as dt

    from app.extensions import db
    from app.infra.models import AuditEntry
    from app.services import audit

    with sqlite_app.app_context():
        for day, target in ((dt.datetime(2026, 3, 1, 23, 59, tzinfo=dt.UTC), "first-of-march"),
                            (dt.datetime(2026, 3, 2, 0, 0, tzinfo=dt.UTC), "second-of-march")):
            entry = audit.record(audit.SYSTEM, "test.dated", "thing", target)
            entry.at = day
        db.session.commit()
        assert db.session.query(AuditEntry).filter_by(action="test.dated").count() == 2
    admin = staff_client(sqlite_app, "admin")
    only_first = admin.get("/audit?action=test.dated&first_day=2026-03-01&last_day=2026-03-01")
    text = only_first.get_data(as_text=True)
    assert only_first.status_code == 200
    assert "first-of-march" in text and "second-of-march" not in text
    from_second = admin.get("/audit?action=test.dated&first_day=2026-03-02").get_data(as_text=True)
    assert "second-of-march" in from_second and "first-of-march" not in from_second
    backwards = admin.get("/audit?first_day=2026-03-02&last_day=2026-03-01")
    assert backwards.status_code == 400
    assert "so nothing can match; swap the dates" in backwards.get_data(as_text=True)
