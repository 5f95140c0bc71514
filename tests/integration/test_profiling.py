"""The documented profiling commands: one request, one saga job."""

from tests.helpers import admin_headers, create_product, merchant_with_key, order_body


def test_profile_request_runs_the_request_and_prints_where_time_went(sqlite_app):
    client = sqlite_app.test_client()
    admin = admin_headers(sqlite_app, client)
    _, merchant = merchant_with_key(client, admin)
    key = merchant["X-API-Key"]
    result = sqlite_app.test_cli_runner().invoke(
        args=["profile-request", "/api/v1/orders?limit=5", "--header", f"X-API-Key: {key}",
              "--limit", "10"]
    )
    assert result.exit_code == 0, result.output
    assert "GET /api/v1/orders?limit=5 -> 200" in result.output
    assert "function calls" in result.output and "cumulative" in result.output


def test_profile_saga_drives_one_order_under_the_profiler(app):
    client = app.test_client()
    admin = admin_headers(app, client)
    _, merchant = merchant_with_key(client, admin)
    create_product(client, merchant, stock=3)
    order_id = client.post("/api/v1/orders", json=order_body(), headers=merchant).get_json()["id"]
    result = app.test_cli_runner().invoke(args=["profile-saga", order_id])
    assert result.exit_code == 0, result.output
    assert f"saga of {order_id} -> completed" in result.output
    assert "run_saga" in result.output
    status = client.get(f"/api/v1/orders/{order_id}", headers=merchant).get_json()["status"]
    assert status == "completed"
