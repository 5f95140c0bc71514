"""Feature flags: the /flags page, the API, propagation to other processes, the kill switches."""

from __future__ import annotations

import time

import pytest

from tests.helpers import admin_headers, drain_queues, order_body
from tests.web.dashboard_support import audit_entries, place, post_form, shop, staff_client


def _seed_flags(app):
    from app.services import flags

    with app.app_context():
        flags.ensure_builtin_flags()


def _set(app, name, enabled):
    from app.services import flags

    with app.app_context():
        flags.set_flag(name, enabled=enabled, reason="test")


def test_admin_toggles_the_order_kill_switch_on_the_page_and_the_api_answers_503(app):
    _seed_flags(app)
    api, _, headers = shop(app)
    admin = staff_client(app, "admin")
    page = admin.get("/flags").get_data(as_text=True)
    assert "orders_kill_switch" in page and "kill switch" in page

    response = post_form(admin, "/flags/orders_kill_switch", {
        "orders_kill_switch-enabled": "y", "orders_kill_switch-rollout_percentage": "100",
        "orders_kill_switch-reason": "payment provider incident INC-7",
    }, page="/flags")
    assert response.status_code == 302

    refused = api.post("/api/v1/orders", json={"items": []}, headers=headers)
    assert refused.status_code == 503
    assert refused.mimetype == "application/problem+json"
    assert int(refused.headers["Retry-After"]) > 0
    assert refused.get_json()["status"] == 503

    entry = audit_entries(app, "flag.update")[0]
    assert entry.actor == admin.username and entry.source == "web"
    assert entry.before["enabled"] is False and entry.after["enabled"] is True
    assert entry.reason == "payment provider incident INC-7"
    page = admin.get("/flags").get_data(as_text=True)
    assert admin.username in page  # who changed it last

    keyed = {**headers, "Idempotency-Key": "kill-switch-retry-1"}
    assert api.post("/api/v1/orders", json=order_body(), headers=keyed).status_code == 503
    _set(app, "orders_kill_switch", False)
    # The refusal was not stored as the key's answer: the client's retry places the order.
    assert api.post("/api/v1/orders", json=order_body(), headers=keyed).status_code == 202


@pytest.mark.parametrize(("fields", "status", "told"), [
    # Saved in the state it is in (off): nothing changes, the page says so.
    ({"payment_hold-reason": "checking it is off"}, 302,
     "Flag payment_hold was in that state already; nothing changed."),
    # A change without a reason is refused.
    ({"payment_hold-enabled": "y"}, 400, "The flag was not changed"),
])
def test_a_flag_save_that_changes_nothing_writes_no_audit_entry(sqlite_app, fields, status,
                                                                  told):
    _seed_flags(sqlite_app)
    admin = staff_client(sqlite_app, "admin")
    response = post_form(admin, "/flags/payment_hold", {
        "payment_hold-rollout_percentage": "100", **fields}, page="/flags")
    assert response.status_code == status
    if status == 302:
        response = admin.get(response.headers["Location"])
    assert told in response.get_data(as_text=True)
    assert audit_entries(sqlite_app, "flag.update") == []


def test_a_viewer_sees_flags_but_cannot_change_them(sqlite_app):
    _seed_flags(sqlite_app)
    viewer = staff_client(sqlite_app, "viewer")
    page = viewer.get("/flags").get_data(as_text=True)
    assert "payment_hold" in page and "Save payment_hold" not in page
    response = post_form(viewer, "/flags/payment_hold", {
        "payment_hold-enabled": "y", "payment_hold-rollout_percentage": "100",
        "payment_hold-reason": "sneaky",
    }, page="/flags")
    assert response.status_code == 403


def test_flags_api_lists_and_puts_flags_for_admins_only(sqlite_app):
    _seed_flags(sqlite_app)
    client = sqlite_app.test_client()
    admin = admin_headers(sqlite_app, client)
    listed = client.get("/api/v1/flags", headers=admin).get_json()["data"]
    names = {f["name"] for f in listed}
    assert {"orders_kill_switch", "payment_hold"} <= names
    assert set(listed[0]) >= {"name", "enabled", "rollout_percentage", "description", "updated_at"}

    put = client.put("/api/v1/flags/new_checkout", json={"enabled": True, "rollout_percentage": 25},
                     headers=admin)
    assert put.status_code == 200
    assert put.get_json()["rollout_percentage"] == 25 and put.get_json()["enabled"] is True
    bad = client.put("/api/v1/flags/new_checkout", json={"enabled": True,
                                                          "rollout_percentage": 101},
                     headers=admin)
    assert bad.status_code == 422
    # The same state again: answered like any PUT, but nothing changed and nothing is audited.
    again = client.put("/api/v1/flags/new_checkout",
                       json={"enabled": True, "rollout_percentage": 25}, headers=admin)
    assert again.status_code == 200 and again.get_json() == put.get_json()
    assert [e.action for e in audit_entries(sqlite_app, None)
            if e.target_id == "new_checkout"] == ["flag.create"]
    _, merchant = shop(sqlite_app)[1:]
    assert client.get("/api/v1/flags", headers=merchant).status_code == 403


def test_a_flag_change_reaches_another_app_instance_within_5_seconds(make_app, database_url):
    from app.services import flags

    first, second = make_app(database_url), make_app(database_url)
    _seed_flags(first)
    with second.app_context():
        assert not flags.is_enabled("orders_kill_switch", "mer_x")  # warms its cache
    with first.app_context():
        flags.set_flag("orders_kill_switch", enabled=True, reason="test")
    started = time.monotonic()
    with second.app_context():
        while not flags.is_enabled("orders_kill_switch", "mer_x"):
            assert time.monotonic() - started < 5, "the change did not arrive within 5 s"
            time.sleep(0.1)


def test_without_the_redis_version_key_a_change_still_arrives_within_5_seconds(make_app,
                                                                               sqlite_database_url):
    from app.services import flags

    first, second = make_app(sqlite_database_url), make_app(sqlite_database_url)
    _seed_flags(first)
    with second.app_context():
        assert not flags.is_enabled("payment_hold", "mer_x")
    with first.app_context():
        flag = flags.get_flag("payment_hold")
        flag.enabled = True  # written behind the service's back: no version bump at all
        from app.extensions import db

        db.session.commit()
    started = time.monotonic()
    with second.app_context():
        while not flags.is_enabled("payment_hold", "mer_x"):
            assert time.monotonic() - started < 5
            time.sleep(0.2)


def test_payment_hold_makes_sagas_wait_before_payment_then_finish_once_lifted(app):
    from app.services import orders

    _seed_flags(app)
    api, _, headers = shop(app)
    _set(app, "payment_hold", True)
    order_id = place(api, headers)
    drain_queues(app)
    with app.app_context():
        order = orders.get_order(order_id)
        assert order.status == "processing" and order.failure_reason is None
        from tests.web.dashboard_support import saga_step_states

        steps = saga_step_states(order_id)
    assert steps["reserve_inventory"] == ("succeeded", 1)
    assert steps["capture_payment"] == ("pending", 0)  # waiting, no attempt used
    admin = staff_client(app, "operator")
    assert "payment_hold" in admin.get(f"/orders/{order_id}").get_data(as_text=True)

    _set(app, "payment_hold", False)  # lifting the hold queues the waiting sagas
    drain_queues(app)
    with app.app_context():
        assert orders.get_order(order_id).status == "completed"


def test_payment_hold_stops_a_whole_batch_before_payment_then_lets_it_finish(app):
    """A backlog's sagas run as one batch (SAGA_BATCH_SIZE): the hold stops each of them as it
    stops a lone saga - reserved, not charged, no attempt used - and lifting it finishes them."""
    from app.services import orders
    from tests.web.dashboard_support import saga_step_states

    _seed_flags(app)
    api, _, headers = shop(app)
    _set(app, "payment_hold", True)
    order_ids = [place(api, headers) for _ in range(3)]
    drain_queues(app)
    with app.app_context():
        for order_id in order_ids:
            assert orders.get_order(order_id).status == "processing"
            steps = saga_step_states(order_id)
            assert steps["reserve_inventory"] == ("succeeded", 1)
            assert steps["capture_payment"] == ("pending", 0)

    _set(app, "payment_hold", False)
    drain_queues(app)
    with app.app_context():
        assert {orders.get_order(order_id).status for order_id in order_ids} == {"completed"}


def test_the_auto_refresh_switch_turns_page_polling_off_and_on(sqlite_app):
    from app.services import flags

    viewer = staff_client(sqlite_app, "viewer")
    assert 'data-refresh-seconds="30"' in viewer.get("/").get_data(as_text=True)  # default on
    _seed_flags(sqlite_app)
    _set(sqlite_app, flags.DASHBOARD_AUTO_REFRESH, False)
    page = viewer.get("/").get_data(as_text=True)
    assert 'data-refresh-seconds="0"' in page and "refreshes every" not in page
    assert 'data-refresh-seconds="0"' in viewer.get("/queues").get_data(as_text=True)


def test_a_worker_with_a_stale_flag_snapshot_does_not_hold_a_released_saga_again(
    make_app, sqlite_database_url
):
    """Lifting the hold re-queues waiting sagas at once, while a worker's snapshot may still say
    "held" for up to 5 s; the hold is confirmed from the database before a saga waits."""
    import time as clock

    from app.services import flags, orders

    api_app, worker_app = make_app(sqlite_database_url), make_app(sqlite_database_url)
    _seed_flags(api_app)
    api, _, headers = shop(api_app)
    _set(api_app, "payment_hold", True)
    order_id = place(api, headers)
    drain_queues(worker_app)  # held: the worker's snapshot now says payment_hold is on
    with worker_app.app_context():
        assert flags.is_enabled("payment_hold")
        cache = worker_app.extensions["flag_cache"]
        cache.checked_at = cache.loaded_at = clock.monotonic() + 3600  # frozen: never refreshes
    _set(api_app, "payment_hold", False)
    drain_queues(worker_app)
    with worker_app.app_context():
        assert flags.is_enabled("payment_hold"), "the snapshot is stale on purpose"
        assert orders.get_order(order_id).status == "completed"


def test_an_override_for_a_merchant_that_does_not_exist_is_refused(sqlite_app):
    _seed_flags(sqlite_app)
    _, merchant_id, _ = shop(sqlite_app)
    admin = staff_client(sqlite_app, "admin")
    overrides = f"{merchant_id} = on\nmer_doesnotexist = on"
    response = post_form(admin, "/flags/payment_hold", {
        "payment_hold-rollout_percentage": "100", "payment_hold-overrides": overrides,
        "payment_hold-reason": "hold one merchant"}, page="/flags")
    assert response.status_code == 400
    page = response.get_data(as_text=True)
    assert "no merchant has the id mer_doesnotexist" in page
    assert "mer_doesnotexist = on" in page  # the text stays to be corrected
    assert audit_entries(sqlite_app, "flag.update") == []
    fixed = post_form(admin, "/flags/payment_hold", {
        "payment_hold-rollout_percentage": "100", "payment_hold-overrides": f"{merchant_id} = on",
        "payment_hold-reason": "hold one merchant"}, page="/flags")
    assert fixed.status_code == 302
    assert audit_entries(sqlite_app, "flag.update")[0].after["overrides"] == {merchant_id: True}
