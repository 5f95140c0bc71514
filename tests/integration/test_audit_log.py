"""The audit log records who changed what, and the database refuses to rewrite history."""

import pytest
from sqlalchemy import text
from sqlalchemy.exc import DatabaseError

from app.extensions import db
from app.services import audit
from tests.helpers import admin_headers


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
