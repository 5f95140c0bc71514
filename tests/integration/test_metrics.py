"""/metrics in one process: labels by url rule, saga and order metrics, outage tolerance."""

from prometheus_client.parser import text_string_to_metric_families

from tests.helpers import admin_headers, create_product, drain_queues, merchant_with_key, order_body


def scrape(client) -> dict[tuple[str, tuple], float]:
    """Every sample of /metrics as {(name, sorted labels): value}."""
    response = client.get("/metrics")
    assert response.status_code == 200
    assert response.content_type.startswith("text/plain")
    samples = {}
    for family in text_string_to_metric_families(response.get_data(as_text=True)):
        for sample in family.samples:
            samples[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return samples


def value(samples, name, **labels) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


def test_requests_are_counted_by_url_rule_not_raw_path(sqlite_client):
    before = scrape(sqlite_client)
    for order_id in ("ord_a", "ord_b", "ord_c"):
        assert sqlite_client.get(f"/api/v1/orders/{order_id}").status_code == 401
    assert sqlite_client.get("/no/such/page").status_code == 404
    after = scrape(sqlite_client)
    rule = {"endpoint": "/api/v1/orders/<order_id>", "status": "401"}
    assert value(after, "http_requests_total", **rule) - value(
        before, "http_requests_total", **rule
    ) == 3
    assert value(after, "http_request_duration_seconds_count", **rule) - value(
        before, "http_request_duration_seconds_count", **rule
    ) == 3
    unmatched = {"endpoint": "<unmatched>", "status": "404"}
    assert value(after, "http_requests_total", **unmatched) - value(
        before, "http_requests_total", **unmatched
    ) == 1
    assert not any("ord_a" in str(labels) for _, labels in after)


def test_orders_and_saga_steps_are_measured_from_acceptance_to_final_state(app):
    client = app.test_client()
    admin = admin_headers(app, client)
    _, merchant = merchant_with_key(client, admin)
    create_product(client, merchant, stock=10)
    before = scrape(client)
    for token in ("tok_visa", "tok_visa", "tok_chargeDeclined", "tok_flaky"):
        response = client.post("/api/v1/orders", json=order_body(token=token), headers=merchant)
        assert response.status_code == 202
    drain_queues(app)
    after = scrape(client)

    def delta(name, **labels):
        return value(after, name, **labels) - value(before, name, **labels)

    assert delta("orders_created_total") == 4
    assert delta("orders_completed_total") == 3
    assert delta("orders_failed_total", reason="payment_declined") == 1
    assert delta("order_processing_duration_seconds_count") == 4
    assert delta("saga_step_retries_total", step="capture_payment") == 1  # tok_flaky, once
    assert delta("saga_step_duration_seconds_count", step="reserve_inventory",
                 outcome="succeeded") == 4
    assert delta("saga_step_duration_seconds_count", step="capture_payment",
                 outcome="retryable_error") == 1
    assert after[("rq_queue_depth", (("queue", "sagas"),))] == 0
    assert value(after, "redis_up") == 1 and value(after, "database_up") == 1
    assert after[("circuit_breaker_state", (("provider", "payments"),))] == 0  # closed


def test_a_scrape_answers_when_redis_is_down(make_app, sqlite_database_url):
    app = make_app(sqlite_database_url, REDIS_URL="redis://127.0.0.1:1/0")
    samples = scrape(app.test_client())
    assert value(samples, "redis_up") == 0
    assert value(samples, "database_up") == 1
    assert not any(name == "rq_queue_depth" for name, _ in samples)


def test_a_scrape_answers_when_the_database_is_down(make_app):
    app = make_app("postgresql+psycopg://postgres@127.0.0.1:1/nothing")
    samples = scrape(app.test_client())
    assert value(samples, "database_up") == 0
    assert value(samples, "redis_up") == 1


def test_webhook_delivery_attempts_are_counted_by_outcome(sqlite_app):
    import time

    from tests.integration.test_webhooks import Receiver

    client = sqlite_app.test_client()
    admin = admin_headers(sqlite_app, client)
    _, merchant = merchant_with_key(client, admin)
    create_product(client, merchant, stock=3)
    receiver = Receiver(failures=1)
    sqlite_app.config["WEBHOOK_RETRY_BASE_SECONDS"] = 0.2
    try:
        hook = client.post("/api/v1/webhooks", headers=merchant,
                           json={"url": receiver.url, "events": ["order.completed"]}).get_json()
        before = scrape(client)
        order = client.post("/api/v1/orders", json=order_body(), headers=merchant).get_json()
        drain_queues(sqlite_app)  # the saga, then the first delivery attempt (refused)
        middle = scrape(client)
        assert len(receiver.received) == 1 and not receiver.delivered()
        with sqlite_app.app_context():
            from app.services import webhooks

            settings = webhooks.delivery_settings(sqlite_app.config)
            deadline = time.monotonic() + 10
            while not receiver.delivered() and time.monotonic() < deadline:
                time.sleep(0.2)  # the retry is due after its back-off
                webhooks.deliver_pending(hook["id"], order["id"], settings)
        after = scrape(client)
    finally:
        receiver.close()
    assert value(middle, "webhook_deliveries_total", outcome="retry") - value(
        before, "webhook_deliveries_total", outcome="retry"
    ) == 1
    assert value(after, "webhook_deliveries_total", outcome="delivered") - value(
        before, "webhook_deliveries_total", outcome="delivered"
    ) == 1


def test_request_log_lines_carry_request_id_merchant_and_order(sqlite_app):
    import io
    import json
    import logging

    from app.observability.logs import JsonFormatter

    client = sqlite_app.test_client()
    admin = admin_headers(sqlite_app, client)
    merchant_id, merchant = merchant_with_key(client, admin)
    create_product(client, merchant, stock=3)
    order = client.post("/api/v1/orders", json=order_body(), headers=merchant).get_json()
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter())
    access = logging.getLogger("app.access")
    access.addHandler(handler)
    level = access.level
    access.setLevel(logging.INFO)
    try:
        response = client.get(f"/api/v1/orders/{order['id']}",
                              headers={**merchant, "X-Request-ID": "trace-log-1"})
    finally:
        access.removeHandler(handler)
        access.setLevel(level)
    assert response.status_code == 200
    line = json.loads(stream.getvalue().splitlines()[-1])
    assert line["message"] == "request"
    assert line["request_id"] == "trace-log-1"
    assert line["merchant_id"] == merchant_id
    assert line["order_id"] == order["id"]
    assert line["endpoint"] == "/api/v1/orders/<order_id>" and line["status"] == 200
