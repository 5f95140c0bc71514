"""The shift view, the order list and the order page with its retry and cancel actions."""

from __future__ import annotations

from tests.helpers import drain_queues
from tests.web.dashboard_support import (
    audit_entries,
    page_token,
    place,
    post_form,
    shop,
    staff_client,
)


def _confirm(client, path: str, reason: str | None = "customer called, ticket 42"):
    data = {"confirm": "y"}
    if reason is not None:
        data["reason"] = reason
    return post_form(client, path, data, page=path)


def test_shift_view_shows_charts_queues_and_the_newest_failures_with_links(app):
    api, _, headers = shop(app)
    ok = place(api, headers)
    declined = place(api, headers, token="tok_chargeDeclined")
    drain_queues(app)
    viewer = staff_client(app, "viewer")
    page = viewer.get("/").get_data(as_text=True)
    assert page.count("<svg class=\"chart\"") == 4
    assert f'href="/orders/{declined}"' in page
    assert f'href="/orders/{ok}"' not in page  # only failures are listed
    assert "sagas" in page and "SLO" in page
    assert 'src="/static/js/refresh.js"' in page and "<script>" not in page


def test_order_list_filters_by_status_reason_merchant_dates_and_search(app):
    api, merchant_id, headers = shop(app)
    ok = place(api, headers)
    declined = place(api, headers, token="tok_chargeDeclined")
    drain_queues(app)
    viewer = staff_client(app, "viewer")

    def ids(query: str) -> str:
        response = viewer.get("/orders?" + query)
        assert response.status_code == 200, query
        return response.get_data(as_text=True)

    assert declined in ids("status=failed") and ok not in ids("status=failed")
    page = ids("failure_reason=payment_declined")
    assert declined in page and ok not in page
    both = ids(f"merchant={merchant_id}")
    assert declined in both and ok in both
    assert ok in ids(f"q={ok}") and declined not in ids(f"q={ok}")
    assert ok in ids("q=ana@example.com")
    assert ok not in ids("created_to=2020-01-01")
    assert ok in ids("created_from=2020-01-01")
    bad = viewer.get("/orders?created_from=yesterday")
    assert bad.status_code == 400 and "Not a valid date" in bad.get_data(as_text=True)
    stale = viewer.get("/orders?status=failed&cursor=garbage")
    assert stale.status_code == 400 and "page link is not valid" in stale.get_data(as_text=True)
    # The last day the calendar has is a valid inclusive end (it used to overflow into a 500).
    assert ok in ids("created_to=9999-12-31")


def test_nul_characters_are_refused_with_a_message_not_a_server_error(app):
    api, _, headers = shop(app)
    order_id = place(api, headers)
    operator = staff_client(app, "operator")
    assert operator.get("/orders/%00").status_code == 404
    assert operator.get(f"/orders/{order_id}%00").status_code == 404
    for query in ("/orders?q=a%00b", "/audit?actor=%00", "/kb?q=%00"):
        refused = operator.get(query)
        assert refused.status_code == 400, query
        assert "NUL" in refused.get_data(as_text=True)
        assert refused.headers["X-Content-Type-Options"] == "nosniff"
    refused = _confirm(operator, f"/orders/{order_id}/cancel", reason="bad\x00reason")
    assert refused.status_code == 400 and "NUL" in refused.get_data(as_text=True)
    assert "Content-Security-Policy" in refused.headers
    # Nothing was changed, and the dashboard still works for the same session.
    assert api.get(f"/api/v1/orders/{order_id}", headers=headers).get_json()["status"] != \
        "cancelled"
    assert operator.get(f"/orders/{order_id}").status_code == 200
    assert api.get("/api/v1/orders?status=%00", headers=headers).status_code == 422
    assert api.get("/api/v1/orders/%00", headers=headers).status_code == 404


def test_order_list_pages_through_all_orders_without_repeats(sqlite_app):
    from app.services import orders
    from tests.helpers import order_body

    _, merchant_id, _ = shop(sqlite_app)

    class NoQueue:
        def enqueue_saga(self, order_id, *, request_id=None):
            return None

    with sqlite_app.app_context():
        placed = {orders.place_order(merchant_id, order_body(), NoQueue()).id for _ in range(60)}
    viewer = staff_client(sqlite_app, "viewer")
    import re

    seen, url = [], "/orders"
    while url:
        html = viewer.get(url).get_data(as_text=True)
        seen += re.findall(r'<a href="/orders/(ord_\w+)"><code>', html)
        more = re.search(r'href="(/orders\?cursor=[^"]+)"', html)
        url = more.group(1).replace("&amp;", "&") if more else None
    assert len(seen) == len(set(seen)) == 60 and set(seen) == placed


def test_order_page_shows_one_timeline_with_attempts_errors_and_compensations(app):
    api, _, headers = shop(app)
    declined = place(api, headers, token="tok_chargeDeclined")
    drain_queues(app)
    viewer = staff_client(app, "viewer")
    page = viewer.get(f"/orders/{declined}").get_data(as_text=True)
    for expected in ("order.created", "reserve_inventory · attempt 1",
                     "capture_payment · attempt 1", "release_inventory", "order.failed",
                     " ms</td>", "Ana", "SKU-1"):
        assert expected in page, expected
    assert "kind-compensation" in page
    assert viewer.get("/orders/ord_nope").status_code == 404


def test_operator_cancels_a_pending_order_with_a_reason_and_it_ends_cancelled(app):
    api, _, headers = shop(app)
    order_id = place(api, headers)
    operator = staff_client(app, "operator")
    path = f"/orders/{order_id}/cancel"
    assert _confirm(operator, path, reason=None).status_code == 400  # a reason is required
    assert audit_entries(app, "order.cancel") == []
    response = _confirm(operator, path)
    assert response.status_code == 302
    drain_queues(app)
    from app.services import orders

    with app.app_context():
        assert orders.get_order(order_id).status == "cancelled"
    entry = audit_entries(app, "order.cancel")[0]
    assert entry.actor == operator.username and entry.reason == "customer called, ticket 42"
    assert entry.before == {"status": "pending"}
    # Final now: a second cancel is refused with a message and no new audit entry.
    _confirm(operator, path)
    assert len(audit_entries(app, "order.cancel")) == 1


def test_operator_retries_a_stuck_saga_and_it_completes(app):
    api, _, headers = shop(app)
    order_id = place(api, headers)
    with app.app_context():  # the job is lost (a flushed Redis): the order is stuck pending
        app.extensions["job_queue"].queue("sagas").empty()
    drain_queues(app)
    operator = staff_client(app, "operator")
    assert _confirm(operator, f"/orders/{order_id}/retry").status_code == 302
    drain_queues(app)
    from app.services import orders

    with app.app_context():
        assert orders.get_order(order_id).status == "completed"
    assert audit_entries(app, "order.retry_saga")[0].target_id == order_id
    # The order's own timeline says who retried it and why.
    page = operator.get(f"/orders/{order_id}").get_data(as_text=True)
    assert f"order.retry_saga by {operator.username} (web)" in page
    assert "customer called, ticket 42" in page and "kind-staff" in page


def test_a_charged_and_refunded_order_cannot_be_retried_and_the_page_says_why(sqlite_app):
    api, _, headers = shop(sqlite_app)
    refused_shipment = place(api, headers, country="XX")  # charged, then refunded
    drain_queues(sqlite_app)
    operator = staff_client(sqlite_app, "operator")
    confirm_page = operator.get(f"/orders/{refused_shipment}/retry").get_data(as_text=True)
    assert "charge them a second time" in confirm_page and 'type="submit" class="primary"' not in (
        confirm_page)
    response = operator.post(f"/orders/{refused_shipment}/retry", data={
        "csrf_token": page_token(operator), "reason": "try again", "confirm": "y"})
    assert response.status_code == 302
    followed = operator.get(response.headers["Location"]).get_data(as_text=True)
    assert "charge them a second time" in followed
    assert audit_entries(sqlite_app, "order.retry_saga") == []
    order = api.get(f"/api/v1/orders/{refused_shipment}", headers=headers).get_json()
    assert (order["status"], order["failure_reason"]) == ("failed", "shipment_failed")


def _stock(api, headers) -> dict:
    return api.get("/api/v1/products/SKU-1", headers=headers).get_json()


def test_a_failed_order_never_charged_is_reopened_and_its_saga_runs_again(app):
    """Out of stock, restocked, retried by an operator: the same order completes, charged once,
    and the timeline tells the whole story."""
    from app.services.integrity import check_integrity

    api, _, headers = shop(app)
    api.patch("/api/v1/products/SKU-1", json={"stock": 1}, headers=headers)
    too_many = place(api, headers, items=[{"sku": "SKU-1", "quantity": 3}])
    drain_queues(app)
    order = api.get(f"/api/v1/orders/{too_many}", headers=headers).get_json()
    assert (order["status"], order["failure_reason"]) == ("failed", "out_of_stock")
    assert api.post(f"/api/v1/orders/{too_many}/cancel", headers=headers).status_code == 409

    api.patch("/api/v1/products/SKU-1", json={"stock": 10}, headers=headers)
    operator = staff_client(app, "operator")
    confirm_page = operator.get(f"/orders/{too_many}/retry").get_data(as_text=True)
    assert "runs its saga again from the first step" in confirm_page
    assert _confirm(operator, f"/orders/{too_many}/retry", reason=None).status_code == 400
    assert _confirm(operator, f"/orders/{too_many}/retry").status_code == 302
    reopened = api.get(f"/api/v1/orders/{too_many}", headers=headers).get_json()
    assert (reopened["status"], reopened["failure_reason"]) == ("pending", None)
    drain_queues(app)

    done = api.get(f"/api/v1/orders/{too_many}", headers=headers).get_json()
    assert (done["status"], done["failure_reason"]) == ("completed", None)
    product = _stock(api, headers)
    assert (product["stock"], product["reserved"]) == (7, 0)
    events = [e["type"] for e in api.get(f"/api/v1/orders/{too_many}/events",
                                         headers=headers).get_json()["data"]]
    assert events.index("order.failed") < events.index("order.retried") < events.index(
        "payment.captured") < events.index("order.completed")
    with app.app_context():
        from sqlalchemy import select

        from app.extensions import db
        from app.infra.models import SagaStep

        keys = db.session.scalars(select(SagaStep.idempotency_key).where(
            SagaStep.order_id == too_many)).all()
    assert sorted(keys) == sorted(f"{too_many}:{name}:run2" for name in (
        "reserve_inventory", "capture_payment", "create_shipment", "complete"))
    entry = audit_entries(app, "order.retry_saga")[0]
    assert entry.before["failure_reason"] == "out_of_stock"
    assert entry.after == {"status": "pending", "queued": True}
    with app.app_context():
        assert check_integrity() == []
    # Final again: completed has nothing to retry.
    assert _confirm(operator, f"/orders/{too_many}/retry").status_code == 302
    assert len(audit_entries(app, "order.retry_saga")) == 1


def test_a_reopened_order_that_fails_again_is_compensated_again_and_never_charged(app):
    from app.services.integrity import check_integrity

    api, _, headers = shop(app)
    declined = place(api, headers, token="tok_chargeDeclined")
    drain_queues(app)
    operator = staff_client(app, "operator")
    for _ in range(2):  # each run gets its own provider keys; each is declined again
        assert _confirm(operator, f"/orders/{declined}/retry").status_code == 302
        drain_queues(app)
        order = api.get(f"/api/v1/orders/{declined}", headers=headers).get_json()
        assert (order["status"], order["failure_reason"]) == ("failed", "payment_declined")
    events = [e["type"] for e in api.get(f"/api/v1/orders/{declined}/events",
                                         headers=headers).get_json()["data"]]
    assert events.count("order.retried") == 2 and events.count("payment.declined") == 3
    assert events.count("inventory.released") == 3
    assert _stock(api, headers)["reserved"] == 0
    with app.app_context():
        assert check_integrity() == []


def test_pages_carry_security_headers_and_next_only_goes_to_local_paths(sqlite_app):
    from tests.helpers import create_user, csrf_token_from

    viewer = staff_client(sqlite_app, "viewer")
    for path in ("/", "/orders", "/queues", "/flags", "/login"):
        headers = viewer.get(path).headers
        csp = headers["Content-Security-Policy"]
        assert "script-src 'self'" in csp and "unsafe-inline" not in csp
        assert "frame-ancestors 'none'" in csp
        assert headers["X-Content-Type-Options"] == "nosniff"
        assert headers["Referrer-Policy"]
    # The icon browsers ask for on every page is served (from static/, like every asset).
    icon = sqlite_app.test_client().get("/favicon.ico", follow_redirects=True)
    assert icon.status_code == 200 and icon.mimetype == "image/svg+xml"
    assert 'rel="icon"' in viewer.get("/").get_data(as_text=True)
    create_user(sqlite_app, "nextuser", "viewer")
    for target, expected in (("/orders?status=failed", "/orders?status=failed"),
                             ("https://evil.example/", "/"), ("//evil.example", "/"),
                             ("/\\evil.example", "/")):
        client = sqlite_app.test_client()
        token = csrf_token_from(client.get("/login").get_data(as_text=True))
        from tests.conftest import PASSWORD

        response = client.post("/login", query_string={"next": target},
                               data={"username": "nextuser", "password": PASSWORD,
                                     "csrf_token": token})
        assert response.headers["Location"] == expected, target
    anonymous = sqlite_app.test_client().get("/orders?status=failed")
    assert anonymous.status_code == 302
    assert "next=/orders?status%3Dfailed" in anonymous.headers["Location"] or (
        "next=%2Forders" in anonymous.headers["Location"])


def test_session_cookie_is_httponly_lax_and_secure_in_production():
    from app.factory import flask_config
    from config import load_settings

    production = flask_config(load_settings(overrides={
        "ENV": "production", "SECRET_KEY": "x" * 40, "JWT_SIGNING_KEY": "y" * 40,
        "WEBHOOK_MASTER_KEY": "z" * 40, "DATABASE_URL": "sqlite://",
    }))
    assert production["SESSION_COOKIE_SECURE"] is True
    assert production["SESSION_COOKIE_HTTPONLY"] is True
    assert production["SESSION_COOKIE_SAMESITE"] == "Lax"


def test_chart_buckets_count_orders_in_the_right_hour_on_both_databases(app):
    import datetime as dt

    from sqlalchemy import update

    from app.extensions import db
    from app.infra.models import Order
    from app.services import dashboard

    api, _, headers = shop(app)
    ids = [place(api, headers) for _ in range(3)]
    now = dt.datetime.now(dt.UTC)
    with app.app_context():
        for order_id, hours_ago in zip(ids, (0, 5, 5), strict=True):
            at = now - dt.timedelta(hours=hours_ago, minutes=1)
            db.session.execute(update(Order).where(Order.id == order_id).values(
                created_at=at, status="completed", finished_at=at + dt.timedelta(seconds=2)))
        db.session.commit()
        day = dashboard.orders_by_status(now, dt.timedelta(days=1), dt.timedelta(hours=1))
        flow = dashboard.throughput_and_latency(now, dt.timedelta(days=1), dt.timedelta(hours=1))
    def bucket(hours_ago: int) -> int:
        at = now - dt.timedelta(hours=hours_ago, minutes=1)
        return next(i for i, start in enumerate(day.starts)
                    if start <= at < start + dt.timedelta(hours=1))

    completed = day.values["completed"]
    assert sum(completed) == 3 and completed[bucket(0)] == 1 and completed[bucket(5)] == 2
    finished_five_ago = flow.starts.index(day.starts[bucket(5)])
    assert flow.values["completed"][finished_five_ago] == 2
    assert flow.values["p95_seconds"][finished_five_ago] == 2.0
