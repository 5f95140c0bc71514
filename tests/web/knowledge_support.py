"""Helpers for the knowledge, runbook and postmortem page tests: staff sessions and CSRF forms."""

from __future__ import annotations

import uuid

from sqlalchemy import select

from tests.helpers import create_user, csrf_token_from, web_login


def staff_client(app, role: str):
    """A test client logged in through the real form as a new user with this role."""
    client = app.test_client()
    name = f"{role}-{uuid.uuid4().hex[:6]}"
    create_user(app, name, role)
    assert web_login(client, name).status_code == 302
    client.username = name
    return client


def submit(client, form_page: str, action: str, data: dict):
    """POST `data` to `action` with the CSRF token of the page that shows the form."""
    page = client.get(form_page)
    assert page.status_code == 200, page.status_code
    token = csrf_token_from(page.get_data(as_text=True))
    return client.post(action, data={**data, "csrf_token": token})


def audit_entries(app, action: str) -> list:
    """Audit log rows for one action, oldest first."""
    from app.extensions import db
    from app.infra.models import AuditEntry

    with app.app_context():
        rows = db.session.scalars(
            select(AuditEntry).where(AuditEntry.action == action).order_by(AuditEntry.seq)
        )
        return list(rows)
