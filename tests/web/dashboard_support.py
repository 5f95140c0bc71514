"""Helpers for the dashboard tests: staff logins, orders placed and driven, form posts with CSRF."""

from __future__ import annotations

import uuid

from tests.helpers import (
    admin_headers,
    create_product,
    create_user,
    csrf_token_from,
    merchant_with_key,
    order_body,
    web_login,
)

STAFF = ("viewer", "operator", "admin")


def staff_client(app, role: str):
    """A test client logged in as a new user of `role`."""
    client = app.test_client()
    name = f"{role}-{uuid.uuid4().hex[:6]}"
    create_user(app, name, role)
    response = web_login(client, name)
    assert response.status_code == 302, response.get_data(as_text=True)
    client.username = name
    return client


def page_token(client, path: str = "/") -> str:
    """A CSRF token of the client's session, taken from a rendered page."""
    return csrf_token_from(client.get(path).get_data(as_text=True))


def post_form(client, path: str, data: dict, page: str = "/"):
    """POST `data` with the session's CSRF token, under its prefix too for prefixed forms
    (the flags page names its fields `<flag>-...`, the token included)."""
    token = page_token(client, page)
    prefixes = {key.split("-", 1)[0] for key in data if "-" in key}
    tokens = {f"{prefix}-csrf_token": token for prefix in prefixes}
    return client.post(path, data={**data, "csrf_token": token, **tokens})


def shop(app):
    """A merchant with a product; returns (api client, merchant id, merchant headers)."""
    api = app.test_client()
    admin = admin_headers(app, api)
    merchant_id, headers = merchant_with_key(api, admin)
    create_product(api, headers, stock=1000)
    return api, merchant_id, headers


def place(api, headers, **changes) -> str:
    response = api.post("/api/v1/orders", json=order_body(**changes), headers=headers)
    assert response.status_code == 202, response.get_json()
    return response.get_json()["id"]


def audit_entries(app, action: str) -> list:
    from app.services import audit

    with app.app_context():
        return audit.list_entries(action=action, limit=100).items


def saga_step_states(order_id: str) -> dict[str, tuple[str, int]]:
    """{step: (status, attempts)} of one order (call inside an app context)."""
    from sqlalchemy import select

    from app.extensions import db
    from app.infra.models import SagaStep

    steps = db.session.scalars(select(SagaStep).where(SagaStep.order_id == order_id))
    return {s.name: (s.status, s.attempts) for s in steps}
