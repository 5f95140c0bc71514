"""The audit log records who changed what, and the database refuses to rewrite history."""

import pytest
from sqlalchemy import text
from sqlalchemy.exc import DatabaseError

from app.extensions import db
from app.services import audit
from tests.helpers import admin_headers, create_product, merchant_with_key, order_body


def test_admin_api_changes_are_audited_with_actor_and_request_id(app, client):
    admin = admin_headers(app, client)
    response = client.post("/api/v1/merchants", json={"name": "Audited"},
                           headers={**admin, "X-Request-ID": "req-audit-1"})
    merchant_id = response.get_json()["id"]
    with app.app_context():
        entries = audit.list_entries(target_id=merchant_id, limit=10).items
        assert len(entries) == 1
        entry = entries[0]
        assert (entry.action, entry.source, entry.actor_role) == ("merchant.create", "api", "admin")
        assert entry.actor.startswith("admin-")
        assert entry.request_id == "req-audit-1"
        assert entry.after == {"name": "Audited"}


def test_merchant_api_changes_are_audited_product_create_update_and_cancel(app, client):
    _, merchant = merchant_with_key(client, admin_headers(app, client))
    create_product(client, merchant, sku="AUD-1", price=500, stock=3)
    patched = client.patch("/api/v1/products/AUD-1", json={"price": 650, "stock": 9},
                           headers={**merchant, "X-Request-ID": "req-audit-patch"})
    assert patched.status_code == 200
    order_id = client.post("/api/v1/orders", json=order_body(items=[{"sku": "AUD-1",
                                                                      "quantity": 1}]),
                           headers=merchant).get_json()["id"]
    assert client.post(f"/api/v1/orders/{order_id}/cancel", headers=merchant).status_code == 202
    with app.app_context():
        entries = {e.action: e for e in audit.list_entries(source="api", limit=50).items}
        created, updated = entries["product.create"], entries["product.update"]
        assert created.actor.startswith("api-key:") and created.actor_role == "merchant"
        assert created.after["sku"] == "AUD-1" and created.after["price"] == 500
        assert (updated.before, updated.after) == ({"price": 500, "stock": 3},
                                                   {"price": 650, "stock": 9})
        assert updated.request_id == "req-audit-patch"
        cancelled = entries["order.cancel"]
        assert cancelled.target_id == order_id and cancelled.before == {"status": "pending"}


def test_cli_rate_limit_overrides_are_audited(app):
    runner = app.test_cli_runner()
    assert runner.invoke(args=["rate-limits", "set", "RATELIMIT_API", "7 per second"]).exit_code \
        == 0
    assert runner.invoke(args=["rate-limits", "clear", "RATELIMIT_API"]).exit_code == 0
    assert runner.invoke(args=["rate-limits", "set", "RATELIMIT_API", "lots"]).exit_code != 0
    with app.app_context():
        entries = audit.list_entries(target_id="RATELIMIT_API", limit=10).items
        assert [(e.action, e.source) for e in reversed(entries)] == [
            ("rate_limit.set", "cli"), ("rate_limit.clear", "cli")]
        set_entry = entries[-1]
        assert set_entry.actor.startswith("cli:")
        assert set_entry.before == {"limit": app.config["RATELIMIT_API"]}
        assert set_entry.after == {"limit": "7 per second"}


@pytest.mark.parametrize("statement", ["UPDATE audit_log SET reason = 'rewritten'",
                                       "DELETE FROM audit_log"])
def test_audit_rows_cannot_be_updated_or_deleted(app, statement):
    with app.app_context():
        audit.record(audit.SYSTEM, "test.thing", "thing", "1", reason="original")
        db.session.commit()
        with pytest.raises(DatabaseError, match="append-only"):
            db.session.execute(text(statement))
            db.session.commit()
        db.session.rollback()
        assert [e.reason for e in audit.list_entries(limit=5).items] == ["original"]


def test_the_audit_log_cannot_be_truncated_on_postgresql(make_app, postgresql_database_url):
    app = make_app(postgresql_database_url)
    with app.app_context():
        audit.record(audit.SYSTEM, "test.thing", "thing", "1", reason="kept")
        db.session.commit()
        with pytest.raises(DatabaseError, match="append-only"):
            db.session.execute(text("TRUNCATE audit_log"))
            db.session.commit()
        db.session.rollback()
        assert [e.reason for e in audit.list_entries(limit=5).items] == ["kept"]
