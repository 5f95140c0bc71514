"""Rate limits against a real gunicorn with two workers: counts are shared through Redis."""

from __future__ import annotations

import http.client
import json
import time

import pytest
import requests

from tests.helpers import admin_headers, create_user, csrf_token_from, merchant_with_key
from tests.servers import GunicornServer, settings_of

RATE_HEADERS = ("X-RateLimit-Limit", "X-RateLimit-Remaining", "X-RateLimit-Reset")


@pytest.fixture
def limited_app(make_app, sqlite_database_url):
    return make_app(sqlite_database_url, RATELIMIT_API="5 per minute",
                    RATELIMIT_AUTH="3 per minute")


def _post_from(server, source_ip: str, path: str, body: dict) -> tuple[int, dict]:
    """POST from a chosen loopback address (127.0.0.x), as a different client would."""
    connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10,
                                            source_address=(source_ip, 0))
    connection.request("POST", path, json.dumps(body), {"Content-Type": "application/json"})
    response = connection.getresponse()
    response.read()
    headers = dict(response.getheaders())
    connection.close()
    return response.status, headers


def test_api_limit_is_shared_by_all_workers_with_headers_and_429(limited_app, tmp_path):
    client = limited_app.test_client()
    _, key = merchant_with_key(client, admin_headers(limited_app, client))
    with GunicornServer(settings_of(limited_app), tmp_path, workers=2) as server:
        # A new connection per request: gunicorn hands them to both workers.
        answers = [requests.get(server.url + "/api/v1/orders", headers=key, timeout=10)
                   for _ in range(6)]
        anonymous = requests.get(server.url + "/api/v1/no-such-route", timeout=10)
        base_path = requests.get(server.url + "/api/v1", timeout=10)
        unknown_over_limit = requests.get(server.url + "/api/v1/no-such-route", headers=key,
                                          timeout=10)
    assert [r.status_code for r in answers] == [200] * 5 + [429]
    assert [int(r.headers["X-RateLimit-Remaining"]) for r in answers] == [4, 3, 2, 1, 0, 0]
    for response in answers:
        assert response.headers["X-RateLimit-Limit"] == "5"
        assert 0 <= int(response.headers["X-RateLimit-Reset"]) <= 60
    refused = answers[-1]
    assert refused.headers["Content-Type"] == "application/problem+json"
    assert refused.json()["status"] == 429
    assert 1 <= int(refused.headers["Retry-After"]) <= 60
    # Another caller (anonymous, by IP) has its own budget (the set-up's token request used one
    # of it); a 404 for an unknown route carries the headers too.
    assert anonymous.status_code == 404
    assert anonymous.headers["X-RateLimit-Remaining"] == "3"
    # /api/v1 itself is under /api/v1 as well.
    assert base_path.status_code == 404
    assert base_path.headers["X-RateLimit-Remaining"] == "2"
    # Over the limit, an unknown path is refused like a known one: 429, not 404.
    assert unknown_over_limit.status_code == 429
    assert unknown_over_limit.headers["Content-Type"] == "application/problem+json"
    assert unknown_over_limit.json()["request_id"] == unknown_over_limit.headers["X-Request-ID"]
    assert int(unknown_over_limit.headers["Retry-After"]) >= 1
    assert unknown_over_limit.headers["X-RateLimit-Remaining"] == "0"


def test_token_endpoint_is_limited_per_ip_and_per_username(limited_app, tmp_path):
    from tests.conftest import PASSWORD

    create_user(limited_app, "guessed-user", "viewer")
    create_user(limited_app, "shared-user", "viewer")
    with GunicornServer(settings_of(limited_app), tmp_path, workers=2) as server:
        # Sign-ins that succeed do not use up their username's budget (a shared account must
        # not lock itself out); a wrong password after them is still only the first guess.
        shared = [_post_from(server, f"127.0.0.{i}", "/api/v1/auth/token",
                             {"username": "shared-user", "password": PASSWORD})[0]
                  for i in range(10, 15)]
        guess = _post_from(server, "127.0.0.15", "/api/v1/auth/token",
                           {"username": "shared-user", "password": "wrong-password"})
        # Per IP: three different usernames from one address, then refused.
        per_ip = [_post_from(server, "127.0.0.1", "/api/v1/auth/token",
                             {"username": f"user-{i}", "password": "wrong-password"})[0]
                  for i in range(4)]
        # Per username: one attempt each from four addresses, then refused all the same.
        per_user = [_post_from(server, f"127.0.0.{i}", "/api/v1/auth/token",
                               {"username": "guessed-user", "password": "wrong-password"})
                    for i in range(2, 6)]
    assert shared == [200] * 5
    assert guess[0] == 401 and guess[1]["X-RateLimit-Remaining"] == "2"
    assert per_ip == [401, 401, 401, 429]
    assert [status for status, _ in per_user] == [401, 401, 401, 429]
    assert int(per_user[-1][1]["Retry-After"]) >= 1
    # The headers describe the limit that bites here (RATELIMIT_AUTH), not the API's general one.
    assert [h["X-RateLimit-Limit"] for _, h in per_user] == ["3"] * 4
    assert [h["X-RateLimit-Remaining"] for _, h in per_user] == ["2", "1", "0", "0"]


def test_dashboard_login_over_the_limit_shows_a_form_message_with_429(limited_app, tmp_path):
    create_user(limited_app, "staff-user", "operator")
    with GunicornServer(settings_of(limited_app), tmp_path, workers=2) as server:
        session = requests.Session()
        statuses, page = [], None
        for _ in range(4):
            token = csrf_token_from(session.get(server.url + "/login", timeout=10).text)
            page = session.post(server.url + "/login", timeout=10, data={
                "username": "staff-user", "password": "wrong-password", "csrf_token": token})
            statuses.append(page.status_code)
    assert statuses == [401, 401, 401, 429]
    assert page.headers["Content-Type"].startswith("text/html")
    assert "Too many sign-in attempts" in page.text
    assert 'name="password"' in page.text  # the form again, not an error page or JSON


def test_limits_change_at_run_time_without_a_restart(make_app, sqlite_database_url, tmp_path):
    from app.auth.rate_limits import OVERRIDE_TTL_SECONDS, set_runtime_limit

    app = make_app(sqlite_database_url, RATELIMIT_API="100 per minute")
    client = app.test_client()
    _, key = merchant_with_key(client, admin_headers(app, client))
    with GunicornServer(settings_of(app), tmp_path, workers=2) as server:
        before = requests.get(server.url + "/api/v1/orders", headers=key, timeout=10)
        with app.app_context():
            set_runtime_limit("RATELIMIT_API", "3 per minute")
        time.sleep(OVERRIDE_TTL_SECONDS + 0.5)
        after = [requests.get(server.url + "/api/v1/orders", headers=key, timeout=10)
                 for _ in range(4)]
        with app.app_context():
            set_runtime_limit("RATELIMIT_API", None)
    assert before.headers["X-RateLimit-Limit"] == "100"
    assert {r.headers["X-RateLimit-Limit"] for r in after} == {"3"}
    assert after[-1].status_code == 429


def test_rate_limits_command_overrides_and_clears(sqlite_app):
    runner = sqlite_app.test_cli_runner()
    bad = runner.invoke(args=["rate-limits", "set", "RATELIMIT_API", "lots"])
    assert bad.exit_code != 0 and "couldn't parse" in bad.output
    assert runner.invoke(args=["rate-limits", "set", "RATELIMIT_API", "7 per second"]).exit_code \
        == 0
    shown = runner.invoke(args=["rate-limits", "show"]).output
    assert "RATELIMIT_API=7 per second (configured: 600 per minute)" in shown
    runner.invoke(args=["rate-limits", "clear", "RATELIMIT_API"])
    assert "RATELIMIT_API=600 per minute" in runner.invoke(args=["rate-limits", "show"]).output


def test_each_api_key_request_counts_once_under_the_right_identity(make_app, sqlite_database_url):
    """An API-key request is counted in its first Redis round trip, before the key is looked up:
    a valid key not cached yet, a revoked key and a bogus key must still be counted exactly once,
    under the key when valid and under the client IP otherwise."""
    from app.infra import cache_keys

    limited_app = make_app(sqlite_database_url, RATELIMIT_API="20 per minute")
    client = limited_app.test_client()
    admin = admin_headers(limited_app, client)
    merchant = client.post("/api/v1/merchants", json={"name": "Keyed"}, headers=admin).get_json()
    created = client.post(
        f"/api/v1/merchants/{merchant['id']}/api-keys", json={"name": "k"}, headers=admin
    ).get_json()
    key_id, key = created["id"], {"X-API-Key": created["key"]}
    anonymous = client.get("/api/v1/orders")  # the IP's own budget (the admin token used one)
    ip_left = int(anonymous.headers["X-RateLimit-Remaining"])

    def remaining(headers):
        return int(client.get("/api/v1/orders", headers=headers).headers["X-RateLimit-Remaining"])

    with limited_app.app_context():
        cache_keys.cache.clear()  # cold: the key's principal is not cached
    assert [remaining(key) for _ in range(3)] == [19, 18, 17]
    assert remaining({}) == ip_left - 1  # the cold request was not left on the IP's budget
    assert remaining({"X-API-Key": "opk_bogus_" + "x" * 40}) == ip_left - 2  # bogus: by IP
    assert client.delete(f"/api/v1/api-keys/{key_id}", headers=admin).status_code == 204
    revoked = client.get("/api/v1/orders", headers=key)
    assert revoked.status_code == 401
    assert int(revoked.headers["X-RateLimit-Remaining"]) == ip_left - 3  # revoked: by IP
    assert remaining({}) == ip_left - 4
