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


def _logged_in(app, username: str, role: str = "viewer"):
    create_user(app, username, role)
    client = app.test_client()
    assert web_login(client, username).status_code == 302
    return client


def _redirected_to_login(response) -> bool:
    return response.status_code == 302 and "/login" in response.headers["Location"]


def _log_out(client):
    """Press the logout button of a freshly loaded page."""
    token = csrf_token_from(client.get("/logout").get_data(as_text=True))
    return client.post("/logout", data={"csrf_token": token})


def test_logout_from_a_page_open_longer_than_the_csrf_token_lifetime_asks_once_more(
    sqlite_app, monkeypatch
):
    import time

    import itsdangerous

    client = _logged_in(sqlite_app, "day-shift")
    token = csrf_token_from(client.get("/kb").get_data(as_text=True))  # the button's token
    later = sqlite_app.config["WTF_CSRF_TIME_LIMIT"] + 3600
    monkeypatch.setattr(itsdangerous.timed.TimestampSigner, "get_timestamp",
                        lambda self: int(time.time()) + later)
    stale = client.post("/logout", data={"csrf_token": token})
    assert stale.status_code == 400
    page = stale.get_data(as_text=True)
    assert "press Log out again" in page
    assert client.get("/").status_code == 200, "still logged in"
    done = client.post("/logout", data={"csrf_token": csrf_token_from(page)})
    assert done.status_code == 302 and done.headers["Location"].endswith("/login")
    assert _redirected_to_login(client.get("/"))


def test_logout_without_a_valid_token_changes_nothing_and_a_get_never_logs_out(sqlite_app):
    client = _logged_in(sqlite_app, "swing-shift")
    assert client.get("/logout").status_code == 200
    assert client.get("/").status_code == 200
    for sent in ({}, {"csrf_token": "forged"}):
        refused = client.post("/logout", data=sent)
        assert refused.status_code == 400 and "press Log out again" in refused.get_data(
            as_text=True)
        assert client.get("/").status_code == 200, "a forged logout must not end the session"
    assert _log_out(client).status_code == 302
    assert _redirected_to_login(client.get("/"))


def test_a_copied_session_cookie_is_refused_after_logout(sqlite_app):
    client = _logged_in(sqlite_app, "cookie-owner")
    copied = client.get_cookie("session").value
    assert _log_out(client).status_code == 302

    thief = sqlite_app.test_client()
    thief.set_cookie("session", copied)
    replay = thief.get("/orders")
    assert _redirected_to_login(replay)
    assert thief.get("/kb").status_code == 302
    # Logging in again starts a new session, which works.
    assert web_login(client, "cookie-owner").status_code == 302
    assert client.get("/").status_code == 200


def test_logging_out_ends_only_that_session(sqlite_app):
    create_user(sqlite_app, "two-screens", "viewer")
    desk, wall = sqlite_app.test_client(), sqlite_app.test_client()
    web_login(desk, "two-screens")
    web_login(wall, "two-screens")
    _log_out(desk)
    assert wall.get("/kb").status_code == 200


def test_a_remember_me_cookie_does_not_log_anyone_in(sqlite_app):
    """The dashboard issues none; one made with the app's key (or copied from before a logout)
    still does not bring a session back: such a session has no id a logout could end."""
    from flask_login.utils import encode_cookie

    from app.services import accounts

    create_user(sqlite_app, "remembered", "admin")
    with sqlite_app.test_request_context():
        user = next(u for u in accounts.list_users() if u.username == "remembered")
        cookie = encode_cookie(str(user.id))
    client = sqlite_app.test_client()
    client.set_cookie("remember_token", cookie)
    assert _redirected_to_login(client.get("/admin/users"))


def test_with_redis_unreachable_sessions_still_work_and_a_warning_is_logged(sqlite_app, caplog):
    import logging

    import redis

    client = _logged_in(sqlite_app, "redis-outage")
    sqlite_app.extensions["redis"] = redis.Redis(
        host="127.0.0.1", port=1, socket_connect_timeout=0.2, socket_timeout=0.2)
    with caplog.at_level(logging.WARNING):
        assert client.get("/kb").status_code == 200
    assert any("logged out" in r.getMessage() for r in caplog.records)


def test_a_logged_in_user_opening_login_goes_to_next(sqlite_app):
    client = _logged_in(sqlite_app, "bookmarks")
    response = client.get("/login?next=/orders%3Fstatus%3Dfailed")
    assert response.status_code == 302 and response.headers["Location"] == "/orders?status=failed"
    for unsafe in ("https://evil.example/", "//evil.example/x", "/\\evil.example"):
        response = client.get("/login", query_string={"next": unsafe})
        assert response.status_code == 302 and response.headers["Location"] == "/", unsafe


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
