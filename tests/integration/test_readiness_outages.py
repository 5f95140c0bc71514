"""/readyz follows Redis and the database going away and coming back; /healthz stays 200.

Redis is a server of our own on a free port (never the shared one); the database is a PostgreSQL
database of our own whose connections we ban and allow again.
"""

import time

from app.infra.database import IDLE_PING_SECONDS
from tests.outages import OutageDatabase


def seconds_until(client, wanted_status, limit=10.0) -> float:
    started = time.monotonic()
    while time.monotonic() - started < limit:
        if client.get("/readyz").status_code == wanted_status:
            return time.monotonic() - started
        time.sleep(0.1)
    raise AssertionError(f"/readyz never answered {wanted_status}")


def test_readiness_follows_redis_going_down_and_coming_back(make_app, sqlite_database_url,
                                                            own_redis):
    app = make_app(sqlite_database_url, REDIS_URL=own_redis.url)
    client = app.test_client()
    assert client.get("/readyz").status_code == 200
    own_redis.stop()
    assert seconds_until(client, 503) < 5
    body = client.get("/readyz").get_json()
    assert body["failed"] == ["redis"] and body["checks"]["database"] == "ok"
    assert client.get("/healthz").status_code == 200
    assert client.get("/metrics").status_code == 200
    own_redis.start()
    assert seconds_until(client, 200) < 5


def test_readiness_follows_the_database_going_away_and_coming_back(make_app):
    with OutageDatabase("op_ready") as database:
        app = make_app(database.url)
        client = app.test_client()
        assert client.get("/readyz").status_code == 200
        database.go_away()
        assert seconds_until(client, 503) < 5
        assert client.get("/readyz").get_json()["failed"] == ["database"]
        assert client.get("/healthz").status_code == 200
        database.come_back()
        assert seconds_until(client, 200) < 5


RATE_HEADERS = ("X-RateLimit-Limit", "X-RateLimit-Remaining", "X-RateLimit-Reset")


def test_the_api_answers_a_database_outage_with_503_retry_after_and_rate_headers(
    make_app, redis_url, tmp_path
):
    from tests.conftest import migrate
    from tests.helpers import admin_headers, create_product, merchant_with_key, order_body

    with OutageDatabase() as database:
        migrate(database.url, redis_url, tmp_path / "migrate")
        app = make_app(database.url)
        client = app.test_client()
        _, merchant = merchant_with_key(client, admin_headers(app, client))
        create_product(client, merchant)
        order = client.post("/api/v1/orders", json=order_body(), headers=merchant).get_json()
        assert client.get(f"/api/v1/orders/{order['id']}", headers=merchant).status_code == 200
        database.go_away()
        calls = [
            ("get", "/api/v1/products", merchant, None),  # the key's principal is cached
            # Order reads look up the version on their own autocommit connection (PostgreSQL).
            ("get", f"/api/v1/orders/{order['id']}", merchant, None),
            ("get", f"/api/v1/orders/{order['id']}/events", merchant, None),
            ("post", "/api/v1/orders", {**merchant, "Idempotency-Key": "outage-1"}, order_body()),
            ("get", "/api/v1/orders/ord_missing", {"X-API-Key": "op_unknown_key"}, None),
            ("post", "/api/v1/auth/token", {}, {"username": "admin", "password": "x" * 12}),
        ]
        for method, path, headers, body in calls:
            response = getattr(client, method)(path, headers=headers, json=body)
            assert response.status_code == 503, (path, response.get_data(as_text=True))
            assert response.mimetype == "application/problem+json"
            assert response.headers["Retry-After"] == "5"
            assert all(name in response.headers for name in RATE_HEADERS), path
        # Connections idle past IDLE_PING_SECONDS are pinged, found dead and replaced: the
        # refused connects are a 503 too (a raw pool checkout hands out the driver's own error).
        time.sleep(IDLE_PING_SECONDS + 0.2)
        order_url = f"/api/v1/orders/{order['id']}"
        for _ in range(2):
            response = client.get(order_url, headers=merchant)
            assert response.status_code == 503, response.get_data(as_text=True)
        database.come_back()
        deadline = time.monotonic() + 10
        while {client.get(path, headers=merchant).status_code
               for path in ("/api/v1/products", order_url)} != {200}:
            assert time.monotonic() < deadline, "the API did not come back with the database"
            time.sleep(0.2)
        # Nothing half-done was kept: the idempotency key tried during the outage is free again.
        created = client.post("/api/v1/orders", json=order_body(),
                              headers={**merchant, "Idempotency-Key": "outage-1"})
        assert created.status_code == 202, created.get_data(as_text=True)


def test_with_redis_away_limits_hold_per_process_and_every_response_has_the_headers(
    make_app, sqlite_database_url, own_redis
):
    from tests.helpers import admin_headers, merchant_with_key

    redis_url = own_redis.url
    setup = make_app(sqlite_database_url, REDIS_URL=redis_url)
    setup_client = setup.test_client()
    _, merchant = merchant_with_key(setup_client, admin_headers(setup, setup_client))
    app = make_app(sqlite_database_url, REDIS_URL=redis_url,
                   RATELIMIT_API="3 per minute", RATELIMIT_AUTH="2 per minute")
    client = app.test_client()
    own_redis.stop()

    reads = [client.get("/api/v1/products", headers=merchant) for _ in range(5)]
    assert [r.status_code for r in reads] == [200, 200, 200, 429, 429]
    assert [r.headers["X-RateLimit-Remaining"] for r in reads] == ["2", "1", "0", "0", "0"]
    assert all(r.headers["X-RateLimit-Limit"] == "3" for r in reads)
    assert int(reads[-1].headers["Retry-After"]) >= 1
    guesses = [
        client.post("/api/v1/auth/token",
                    json={"username": "nobody-here", "password": "wrong-password"})
        for _ in range(3)
    ]
    assert [g.status_code for g in guesses] == [401, 401, 429]

    own_redis.start()  # back to the shared windows (an empty Redis: a fresh count)
    back = client.get("/api/v1/products", headers=merchant)
    assert back.status_code == 200 and back.headers["X-RateLimit-Remaining"] == "2"


def test_the_dashboard_answers_a_database_outage_with_a_503_page_not_a_500(
    make_app, redis_url, tmp_path
):
    from tests.conftest import PASSWORD, migrate
    from tests.helpers import csrf_token_from
    from tests.web.dashboard_support import staff_client

    with OutageDatabase() as database:
        migrate(database.url, redis_url, tmp_path / "migrate")
        app = make_app(database.url)
        operator = staff_client(app, "operator")
        anonymous = app.test_client()
        database.go_away()
        # The logged-in user is read from the database on every page: nothing can render but
        # this page, which needs neither the user nor the database.
        login_page = anonymous.get("/login")  # needs no database: it still renders
        assert login_page.status_code == 200
        token = csrf_token_from(login_page.get_data(as_text=True))
        login = {"username": operator.username, "password": PASSWORD, "csrf_token": token}
        for client, path, form in [(operator, "/", None), (operator, "/orders", None),
                                   (anonymous, "/login", login)]:
            for _ in range(2):  # the connection found dead, then a refused reconnect
                response = client.post(path, data=form) if form else client.get(path)
                page = response.get_data(as_text=True)
                assert response.status_code == 503, (path, page[:300])
                assert "Database unavailable" in page and "database-failover" in page
                assert response.headers["Retry-After"] == "10"
                assert "Traceback" not in page and "psycopg" not in page
        database.come_back()
        deadline = time.monotonic() + 10
        while operator.get("/orders").status_code != 200:
            assert time.monotonic() < deadline, "the dashboard did not come back"
            time.sleep(0.2)


def test_a_hung_redis_costs_a_request_seconds_not_a_worker(make_app, sqlite_database_url,
                                                          own_redis):
    """Redis frozen (SIGSTOP: connections open, nothing answers) is worse than Redis down: every
    call waits for its timeout. Each one gives up after 2 s, and is not retried, so a request
    still answers within seconds (gunicorn would kill a worker stuck for 30 s)."""
    import signal

    from tests.helpers import admin_headers, create_product, merchant_with_key, order_body

    app = make_app(sqlite_database_url, REDIS_URL=own_redis.url)
    client = app.test_client()
    _, merchant = merchant_with_key(client, admin_headers(app, client))
    create_product(client, merchant)
    order = client.post("/api/v1/orders", json=order_body(), headers=merchant).get_json()
    own_redis.process.send_signal(signal.SIGSTOP)
    try:
        timings = []
        for method, path, body in [("get", f"/api/v1/orders/{order['id']}", None),
                                   ("post", "/api/v1/orders", order_body()),
                                   ("get", "/readyz", None)]:
            started = time.monotonic()
            response = getattr(client, method)(path, headers=merchant, json=body)
            timings.append((path, response.status_code, round(time.monotonic() - started, 1)))
    finally:
        own_redis.process.send_signal(signal.SIGCONT)
    assert [status for _, status, _ in timings] == [200, 202, 503], timings
    assert all(seconds < 6 for _, _, seconds in timings), timings
    # Once the quiet period is over, Redis is asked again: limits are shared again.
    from app.infra.redis_client import QUIET_SECONDS

    time.sleep(QUIET_SECONDS)
    assert client.get("/readyz").status_code == 200
    again = client.get(f"/api/v1/orders/{order['id']}", headers=merchant)
    assert again.status_code == 200 and int(again.headers["X-RateLimit-Remaining"]) > 0
