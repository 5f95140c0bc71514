"""Every dashboard route and action, for every role: generated from app.url_map.

The expectations come from specs/dashboard.md (who may do what), not from the permission table the
code uses, so a route guarded by the wrong permission fails here - and a new route that matches no
case below fails too, until someone decides who may use it.
"""

from __future__ import annotations

import re

import pytest
from werkzeug.routing import AnyConverter

from tests.web.dashboard_support import STAFF, page_token, staff_client

# What each role may do, per the spec's "who" column.
GRANTS = {
    "viewer": {"read"},
    "operator": {"read", "orders", "queues", "knowledge"},
    "admin": {"read", "orders", "queues", "knowledge", "flags", "admin", "audit"},
}
# (methods, path pattern, grant needed); first match wins; None means public.
CASES = [
    ({"GET", "POST"}, r"^/login$", None),
    ({"GET", "POST"}, r"^/logout$", None),
    ({"GET"}, r"^/\.well-known/security\.txt$", None),  # RFC 9116: public by definition
    ({"GET"}, r"^/$", "read"),
    ({"GET"}, r"^/orders$", "read"),
    ({"GET", "POST"}, r"^/orders/[^/]+/(retry|cancel)$", "orders"),
    ({"GET"}, r"^/orders/[^/]+$", "read"),
    ({"GET"}, r"^/queues$", "read"),
    ({"GET", "POST"}, r"^/queues/[^/]+/(pause|resume|requeue|delete)$", "queues"),
    ({"GET"}, r"^/flags$", "read"),
    ({"POST"}, r"^/flags/[^/]+$", "flags"),
    ({"GET"}, r"^/slo$", "read"),
    ({"GET", "POST"}, r"^/admin/", "admin"),
    ({"GET"}, r"^/audit$", "audit"),
    ({"GET", "POST"}, r"^/(kb|runbooks|postmortems)/(new|[^/]+/edit)$", "knowledge"),
    ({"POST"}, r"^/(kb|runbooks|postmortems)/", "knowledge"),
    ({"GET"}, r"^/(kb|runbooks|postmortems)(/.*)?$", "read"),
]


def _expected(method: str, path: str):
    for methods, pattern, grant in CASES:
        if method in methods and re.match(pattern, path):
            return grant
    raise AssertionError(f"no permission case for {method} {path}: add one to CASES")


def dashboard_requests(app) -> list[tuple[str, str]]:
    """(method, path) for every dashboard rule, every `any(...)` choice, dummy ids elsewhere."""
    requests = []
    for rule in app.url_map.iter_rules():
        if not rule.endpoint.startswith("web."):
            continue
        variants = [{}]
        for arg in rule.arguments:
            converter = rule._converters[arg]
            if isinstance(converter, AnyConverter):
                choices = list(converter.items)
            elif converter.regex == r"\d+":
                choices = [1]
            else:
                choices = ["zz404"]
            variants = [{**v, arg: c} for v in variants for c in choices]
        adapter = app.url_map.bind("localhost")
        for values in variants:
            path = adapter.build(rule.endpoint, values)
            for method in sorted(rule.methods - {"HEAD", "OPTIONS"}):
                requests.append((method, path))
    return sorted(set(requests))


def test_every_dashboard_route_has_a_permission_case(sqlite_app):
    for method, path in dashboard_requests(sqlite_app):
        _expected(method, path)


def _call(client, method: str, path: str, token: str | None):
    if method == "GET":
        return client.get(path)
    return client.post(path, data={"csrf_token": token} if token else {})


def test_permission_matrix_for_every_route_and_role(sqlite_app):
    clients = {role: staff_client(sqlite_app, role) for role in STAFF}
    tokens = {role: page_token(c) for role, c in clients.items()}
    anonymous = sqlite_app.test_client()
    anonymous_token = page_token(anonymous, "/login")
    failures = []
    for method, path in dashboard_requests(sqlite_app):
        grant = _expected(method, path)
        if grant is None:
            continue
        response = _call(anonymous, method, path, anonymous_token)
        if response.status_code != 302 or "/login" not in response.headers.get("Location", ""):
            failures.append(f"anonymous {method} {path}: {response.status_code}")
        for role in STAFF:
            response = _call(clients[role], method, path, tokens[role])
            allowed = grant in GRANTS[role]
            refused = response.status_code == 403
            to_login = response.status_code == 302 and "/login" in response.headers["Location"]
            if allowed and (refused or response.status_code == 401 or to_login):
                failures.append(f"{role} {method} {path}: refused ({response.status_code})")
            if not allowed and not refused:
                failures.append(f"{role} {method} {path}: allowed ({response.status_code})")
    assert not failures, "\n".join(failures)


@pytest.mark.parametrize(
    "path",
    ["/flags/orders_kill_switch", "/queues/sagas/pause", "/orders/zz404/cancel", "/admin/users",
     "/admin/merchants"],
)
def test_a_post_without_csrf_token_is_refused_and_changes_nothing(sqlite_app, path):
    from app.services import flags
    from tests.web.dashboard_support import audit_entries

    with sqlite_app.app_context():
        flags.ensure_builtin_flags()
    admin = staff_client(sqlite_app, "admin")
    before = len(audit_entries(sqlite_app, None))
    response = admin.post(path, data={"reason": "no token", "confirm": "y", "name": "X"})
    if "zz404" in path:
        assert response.status_code == 404  # no such order: nothing to protect
    else:
        assert response.status_code == 400
        assert "This form expired; check and submit again." in response.get_data(as_text=True)
    assert len(audit_entries(sqlite_app, None)) == before


def test_a_merchant_user_cannot_log_in_to_the_dashboard(sqlite_app):
    from tests.helpers import create_user, web_login

    client = sqlite_app.test_client()
    api = sqlite_app.test_client()
    from tests.helpers import admin_headers, merchant_with_key

    merchant_id, _ = merchant_with_key(api, admin_headers(sqlite_app, api))
    create_user(sqlite_app, "shopkeeper", "merchant", merchant_id)
    assert web_login(client, "shopkeeper").status_code == 401
    assert client.get("/").status_code == 302
