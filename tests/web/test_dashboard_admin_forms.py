"""The admin pages say what is wrong and refuse what would break the system: the last admin,
duplicate merchants, revoking twice, nameless API keys, crafted roles."""

from __future__ import annotations

import pytest

from tests.helpers import admin_headers, create_user, web_login
from tests.web.dashboard_support import audit_entries, post_form, staff_client


def _user_id(app, username: str) -> str:
    from app.services import accounts

    with app.app_context():
        return next(u.id for u in accounts.list_users() if u.username == username)


def _merchant(app, name: str = "Night Market") -> str:
    from app.services import accounts

    with app.app_context():
        return accounts.create_merchant(name).id


def test_an_api_key_without_a_name_is_refused_with_the_field_error(sqlite_app):
    merchant_id = _merchant(sqlite_app)
    admin = staff_client(sqlite_app, "admin")
    response = post_form(admin, f"/admin/merchants/{merchant_id}/api-keys",
                         {"name": "  ", "sent_once": "blank-name-0123456789"},
                         page="/admin/merchants")
    assert response.status_code == 400
    page = response.get_data(as_text=True)
    assert "API key not created: Key name: This field is required." in page
    assert '<p class="field-error">This field is required.</p>' in page
    assert audit_entries(sqlite_app, "api_key.create") == []


def test_a_crafted_role_change_names_the_invalid_role_not_the_reason(sqlite_app):
    create_user(sqlite_app, "target", "viewer")
    admin = staff_client(sqlite_app, "admin")
    response = post_form(admin, f"/admin/users/{_user_id(sqlite_app, 'target')}/role",
                         {"role": "superuser", "reason": "testing the form"},
                         page="/admin/users")
    assert response.status_code == 400
    page = response.get_data(as_text=True)
    assert "Not changed: Role: Not a valid choice." in page
    assert "reason (3+ characters)" not in page and "Reason:" not in page
    no_reason = post_form(admin, f"/admin/users/{_user_id(sqlite_app, 'target')}/role",
                          {"role": "operator", "reason": ""}, page="/admin/users")
    assert "Not changed: Reason: Say why." in no_reason.get_data(as_text=True)
    assert audit_entries(sqlite_app, "user.change_role") == []


def test_the_last_active_admin_cannot_demote_themselves(app):
    admin = staff_client(app, "admin")
    me = _user_id(app, admin.username)
    response = post_form(admin, f"/admin/users/{me}/role",
                         {"role": "viewer", "reason": "stepping down"}, page="/admin/users")
    assert response.status_code == 409
    assert "is the only active admin; make another user admin first" in response.get_data(
        as_text=True)
    assert admin.get("/admin/users").status_code == 200  # still an admin
    assert audit_entries(app, "user.change_role") == []

    # With a second active admin, stepping down works, and then that one is the last.
    create_user(app, "deputy", "admin")
    assert post_form(admin, f"/admin/users/{me}/role", {"role": "operator",
                     "reason": "stepping down"}, page="/admin/users").status_code == 302
    deputy = app.test_client()
    web_login(deputy, "deputy")
    deputy_id = _user_id(app, "deputy")
    refused = post_form(deputy, f"/admin/users/{deputy_id}/role",
                        {"role": "viewer", "reason": "oops"}, page="/admin/users")
    assert refused.status_code == 409


def test_a_disabled_admin_does_not_count_and_the_last_admin_cannot_be_disabled(app):
    from app.auth.actors import cli_actor
    from app.domain.errors import Conflict
    from app.services import accounts

    admin = staff_client(app, "admin")
    me = _user_id(app, admin.username)
    create_user(app, "away", "admin")
    away = _user_id(app, "away")
    assert post_form(admin, f"/admin/users/{away}/disable", {"reason": "left the team"},
                     page="/admin/users").status_code == 302
    # The only other admin is disabled: demoting myself would leave none.
    assert post_form(admin, f"/admin/users/{me}/role", {"role": "viewer", "reason": "x" * 3},
                     page="/admin/users").status_code == 409
    # The service refuses for every caller (CLI, API), not only the dashboard.
    with app.app_context():
        with pytest.raises(Conflict, match="only active admin"):
            accounts.set_user_active(me, False, cli_actor(), "scripted")
        with pytest.raises(Conflict, match="only active admin"):
            accounts.change_role(me, "operator", cli_actor(), "scripted")
        accounts.set_user_active(away, True, cli_actor(), "back")  # enabling is always fine
        accounts.set_user_active(me, False, cli_actor(), "now there is another admin")
        assert not accounts.get_user(me).is_active


def test_revoking_a_revoked_key_says_so_and_records_nothing_new(sqlite_app):
    from app.services import accounts

    merchant_id = _merchant(sqlite_app)
    with sqlite_app.app_context():
        key_id = accounts.create_api_key(merchant_id, "checkout")[0].id
    admin = staff_client(sqlite_app, "admin")
    first = post_form(admin, f"/admin/api-keys/{key_id}/revoke", {"reason": "leaked in a log"},
                      page="/admin/merchants")
    assert first.status_code == 302
    assert "revoked; it is refused from now on" in admin.get("/admin/merchants").get_data(
        as_text=True)
    # A second tab still shows the Revoke button.
    again = post_form(admin, f"/admin/api-keys/{key_id}/revoke", {"reason": "leaked in a log"},
                      page="/admin/merchants")
    assert again.status_code == 302
    page = admin.get("/admin/merchants").get_data(as_text=True)
    assert "was revoked already; nothing changed" in page
    assert "refused from now on" not in page
    assert len(audit_entries(sqlite_app, "api_key.revoke")) == 1


def test_a_merchant_name_that_exists_is_refused_on_the_dashboard_in_any_case(sqlite_app):
    admin = staff_client(sqlite_app, "admin")
    assert post_form(admin, "/admin/merchants", {"name": "Night Market"},
                     page="/admin/merchants").status_code == 302
    response = post_form(admin, "/admin/merchants", {"name": "  night MARKET "},
                         page="/admin/merchants")
    assert response.status_code == 409
    page = response.get_data(as_text=True)
    assert "a merchant named &#39;night MARKET&#39; exists already" in page
    assert 'value="  night MARKET "' in page
    assert len(audit_entries(sqlite_app, "merchant.create")) == 1


def test_the_api_creates_merchants_by_id_whatever_their_name(sqlite_app):
    """The contract answers 201 to any valid name (merchants are known by id there); only the
    dashboard, where staff pick merchants by name, refuses a name in use."""
    client = sqlite_app.test_client()
    headers = admin_headers(sqlite_app, client)
    first = client.post("/api/v1/merchants", json={"name": "Kedai Kopi"}, headers=headers)
    again = client.post("/api/v1/merchants", json={"name": "Kedai Kopi"}, headers=headers)
    assert first.status_code == again.status_code == 201
    assert first.get_json()["id"] != again.get_json()["id"]


def test_no_api_route_changes_roles_or_disables_users(sqlite_app):
    """The last-admin rule is tested through the service above; should the API ever get a
    route that changes users, it needs its own test of that rule."""
    user_routes = {
        (r.rule, method)
        for r in sqlite_app.url_map.iter_rules() if r.rule.startswith("/api/v1/users")
        for method in r.methods - {"HEAD", "OPTIONS"}
    }
    assert user_routes == {("/api/v1/users", "POST")}


def test_a_stale_role_form_comes_back_with_the_role_and_reason_typed(sqlite_app):
    create_user(sqlite_app, "target", "viewer")
    target = _user_id(sqlite_app, "target")
    admin = staff_client(sqlite_app, "admin")
    response = admin.post(f"/admin/users/{target}/role",
                          data={"role": "operator", "reason": "on call this week"})
    assert response.status_code == 400
    page = response.get_data(as_text=True)
    assert "Not changed: This form expired; check and submit again." in page
    row = page[page.index(f'id="user-{target}"'):]
    row = row[:row.index("</tr>")]
    assert 'value="on call this week"' in row
    assert '<option value="operator" selected>' in row
    assert audit_entries(sqlite_app, "user.change_role") == []


def test_an_api_keys_last_use_shows_on_the_merchants_page(app):
    from app.extensions import db
    from app.infra import cache_keys
    from app.infra.models import ApiKey
    from app.services import accounts

    def last_used(key_id: str):
        with app.app_context():
            return db.session.query(ApiKey).filter_by(id=key_id).one().last_used_at

    merchant_id = _merchant(app)
    with app.app_context():
        key, plain = accounts.create_api_key(merchant_id, "till-1")
        key_id, key_hash = key.id, key.key_hash
    admin = staff_client(app, "admin")

    def last_used_cell() -> str:
        page = admin.get("/admin/merchants").get_data(as_text=True)
        row = page[page.index("till-1"):]
        return row[: row.index("</tr>")]

    assert "never" in last_used_cell()
    api = app.test_client()
    assert api.get("/api/v1/orders", headers={"X-API-Key": plain}).status_code == 200
    assert "never" not in last_used_cell() and "ago" in last_used_cell()
    first = last_used(key_id)
    # While the key's principal is cached, a request writes nothing; once the cache entry is
    # gone, the next request records the new time.
    assert api.get("/api/v1/orders", headers={"X-API-Key": plain}).status_code == 200
    assert last_used(key_id) == first
    with app.app_context():
        cache_keys.invalidate_api_key(key_hash)
    assert api.get("/api/v1/orders", headers={"X-API-Key": plain}).status_code == 200
    assert last_used(key_id) > first
