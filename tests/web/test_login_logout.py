"""Session login and logout as staff meet them."""

from tests.helpers import create_user, csrf_token_from, web_login


def test_logout_by_typed_url_asks_first_and_the_post_ends_the_session(sqlite_app):
    create_user(sqlite_app, "night-shift", "viewer")
    client = sqlite_app.test_client()
    assert web_login(client, "night-shift").status_code == 302

    page = client.get("/logout")
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    assert "night-shift" in html
    assert client.get("/").status_code == 200, "a GET must not log anyone out"

    done = client.post("/logout", data={"csrf_token": csrf_token_from(html)})
    assert done.status_code == 302 and done.headers["Location"].endswith("/login")
    after = client.get("/")
    assert after.status_code == 302 and "/login" in after.headers["Location"]


def test_logout_without_a_csrf_token_keeps_the_session(sqlite_app):
    create_user(sqlite_app, "day-shift", "viewer")
    client = sqlite_app.test_client()
    web_login(client, "day-shift")
    client.post("/logout", data={})
    assert client.get("/").status_code == 200


def test_logout_page_sends_anonymous_visitors_to_login(sqlite_client):
    response = sqlite_client.get("/logout")
    assert response.status_code == 302 and response.headers["Location"].endswith("/login")


def test_a_dashboard_session_does_not_authenticate_the_api_and_stays_logged_in(sqlite_app):
    create_user(sqlite_app, "curious-operator", "operator")
    client = sqlite_app.test_client()
    web_login(client, "curious-operator")
    response = client.get("/api/v1/orders")
    assert response.status_code == 401  # the API takes a token or key, never the cookie (CSRF)
    assert response.headers["Content-Type"] == "application/problem+json"
    assert client.get("/").status_code == 200, "opening an API URL must not log anyone out"
