"""Idempotency-Key: replay, reuse with another body, in flight, scope, and real concurrency."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import pytest
import requests

from tests.helpers import admin_headers, create_product, merchant_with_key, order_body
from tests.servers import GunicornServer, settings_of


@pytest.fixture
def shop(app, client):
    admin = admin_headers(app, client)
    merchant_id, headers = merchant_with_key(client, admin)
    create_product(client, headers, stock=100)
    return {"admin": admin, "merchant_id": merchant_id, "headers": headers}


def _orders(app) -> int:
    from app.extensions import db
    from app.infra.models import Order

    with app.app_context():
        return db.session.query(Order).count()


def test_same_key_same_body_replays_the_first_response(app, client, shop):
    headers = {**shop["headers"], "Idempotency-Key": "order-1"}
    first = client.post("/api/v1/orders", json=order_body(), headers=headers)
    second = client.post("/api/v1/orders", json=order_body(), headers=headers)
    assert first.status_code == second.status_code == 202
    assert second.get_json() == first.get_json()
    assert second.headers["Location"] == first.headers["Location"]
    assert second.headers["Idempotent-Replayed"] == "true"
    assert "Idempotent-Replayed" not in first.headers
    assert _orders(app) == 1


def test_same_key_other_body_is_422_key_reused(app, client, shop):
    headers = {**shop["headers"], "Idempotency-Key": "order-2"}
    client.post("/api/v1/orders", json=order_body(), headers=headers)
    other = client.post(
        "/api/v1/orders", json=order_body(items=[{"sku": "SKU-1", "quantity": 3}]), headers=headers
    )
    assert other.status_code == 422
    assert other.get_json()["type"].endswith("/idempotency-key-reused")
    assert _orders(app) == 1


def test_in_flight_with_the_same_body_is_409(app, client, shop):
    from app.services import idempotency

    headers = {**shop["headers"], "Idempotency-Key": "busy-same"}
    with app.test_request_context(
        "/api/v1/orders", method="POST", json=order_body(), headers=headers
    ):
        from app.api.idempotency import request_fingerprint

        fingerprint = request_fingerprint()
    with app.app_context():
        idempotency.claim(
            f"merchant:{shop['merchant_id']}", "busy-same", "POST", "/api/v1/orders", fingerprint
        )
    response = client.post("/api/v1/orders", json=order_body(), headers=headers)
    assert response.status_code == 409
    assert response.mimetype == "application/problem+json"
    assert _orders(app) == 0


def test_keys_are_scoped_per_merchant(app, client, shop):
    _, other = merchant_with_key(client, shop["admin"], name="Other")
    create_product(client, other)
    one = client.post("/api/v1/orders", json=order_body(),
                      headers={**shop["headers"], "Idempotency-Key": "shared"})
    two = client.post("/api/v1/orders", json=order_body(),
                      headers={**other, "Idempotency-Key": "shared"})
    assert one.status_code == two.status_code == 202
    assert one.get_json()["id"] != two.get_json()["id"]
    assert "Idempotent-Replayed" not in two.headers


def test_a_refused_first_attempt_is_replayed_like_any_first_response(app, client, shop):
    """The contract replays the first response, whatever it was: the same request stays refused
    (even once the sku exists), and another body under the key is a reused key."""
    headers = {**shop["headers"], "Idempotency-Key": "refused-first"}
    unknown_sku = order_body(items=[{"sku": "LATER", "quantity": 1}])
    bad = client.post("/api/v1/orders", json=unknown_sku, headers=headers)
    assert bad.status_code == 422 and "Idempotent-Replayed" not in bad.headers
    create_product(client, shop["headers"], sku="LATER")
    again = client.post("/api/v1/orders", json=unknown_sku, headers=headers)
    assert again.status_code == 422 and again.headers["Idempotent-Replayed"] == "true"
    assert again.get_json()["errors"] == bad.get_json()["errors"]
    other = client.post("/api/v1/orders", json=order_body(), headers=headers)
    assert other.status_code == 422
    assert other.get_json()["type"].endswith("/idempotency-key-reused")
    with app.app_context():
        from app.extensions import db
        from app.infra.models import Order

        assert db.session.query(Order).count() == 0


def test_a_server_error_frees_the_key_so_the_same_request_can_be_retried(
    app, client, shop, monkeypatch
):
    from app.services import orders

    headers = {**shop["headers"], "Idempotency-Key": "retry-after-500"}
    real = orders.place_order

    def failing_once(*args, **kwargs):
        monkeypatch.setattr(orders, "place_order", real)
        raise RuntimeError("boom")

    monkeypatch.setattr(orders, "place_order", failing_once)
    first = client.post("/api/v1/orders", json=order_body(), headers=headers)
    assert first.status_code == 500
    retried = client.post("/api/v1/orders", json=order_body(), headers=headers)
    assert retried.status_code == 202 and "Idempotent-Replayed" not in retried.headers
    replayed = client.post("/api/v1/orders", json=order_body(), headers=headers)
    assert replayed.headers["Idempotent-Replayed"] == "true"
    assert replayed.get_json()["id"] == retried.get_json()["id"]


def test_an_order_whose_answer_was_lost_after_its_commit_is_never_placed_twice(
    app, client, shop, monkeypatch
):
    """The request commits the order, then dies before storing its answer (the database gone,
    the web worker killed): a retry with the key gets that order, now and after the 60 s in which
    a claim without an answer counts as abandoned - never a second order (a second charge)."""
    import datetime as dt

    from sqlalchemy import update
    from sqlalchemy.exc import OperationalError

    from app.extensions import db
    from app.infra.models import IdempotencyRecord
    from app.services import idempotency

    headers = {**shop["headers"], "Idempotency-Key": "lost-answer"}

    def database_gone(*_args, **_kwargs):
        raise OperationalError("UPDATE idempotency_keys", {}, Exception("server closed"))

    monkeypatch.setattr(idempotency, "complete", database_gone)
    first = client.post("/api/v1/orders", json=order_body(), headers=headers)
    assert first.status_code == 503
    monkeypatch.undo()
    assert _orders(app) == 1
    with app.app_context():  # as if the claim were old enough to count as abandoned
        long_ago = dt.datetime.now(dt.UTC) - dt.timedelta(minutes=5)
        db.session.execute(update(IdempotencyRecord).values(created_at=long_ago))
        db.session.commit()
    for _ in range(2):
        retried = client.post("/api/v1/orders", json=order_body(), headers=headers)
        assert retried.status_code == 202, retried.get_json()
        assert retried.headers["Idempotent-Replayed"] == "true"
        assert retried.mimetype == "application/json"
        order = retried.get_json()
        assert retried.headers["Location"] == f"/api/v1/orders/{order['id']}"
        assert order["status"] == "pending" and order["items"][0]["sku"] == "SKU-1"
    assert _orders(app) == 1


@pytest.mark.parametrize(
    ("path", "body"),
    [
        ("/api/v1/products", {"sku": "IDEM", "name": "n", "price": 1, "currency": "MYR",
                              "stock": 1}),
        ("/api/v1/merchants", {"name": "Idem Co"}),
        ("/api/v1/users", {"username": "idem-user", "password": "long-enough-password",
                           "role": "viewer"}),
    ],
)
def test_every_creating_post_is_idempotent(app, client, shop, path, body):
    headers = shop["admin"] if "products" not in path else shop["headers"]
    headers = {**headers, "Idempotency-Key": "create-once"}
    first = client.post(path, json=body, headers=headers)
    second = client.post(path, json=body, headers=headers)
    assert first.status_code == 201, first.get_json()
    assert second.status_code == 201 and second.headers["Idempotent-Replayed"] == "true"
    assert second.get_json() == first.get_json()


def _stored_replay_bodies(app) -> str:
    from app.extensions import db
    from app.infra.models import IdempotencyRecord

    with app.app_context():
        return "\n".join(r.response_body or "" for r in db.session.query(IdempotencyRecord))


def test_secrets_are_replayed_but_never_stored_in_clear(app, client, shop):
    """An API key (and a webhook secret) is replayed to the same Idempotency-Key, but the
    stored first response holds it encrypted: keys live at rest only as hashes."""
    headers = {**shop["admin"], "Idempotency-Key": "key-once"}
    path = f"/api/v1/merchants/{shop['merchant_id']}/api-keys"
    first = client.post(path, json={"name": "k"}, headers=headers)
    second = client.post(path, json={"name": "k"}, headers=headers)
    assert second.headers["Idempotent-Replayed"] == "true"
    assert first.get_json() == second.get_json() and first.get_json()["key"]
    merchant = {**shop["headers"], "Idempotency-Key": "hook-once"}
    hook = {"url": "https://example.com/hooks", "events": ["order.completed"]}
    created = client.post("/api/v1/webhooks", json=hook, headers=merchant)
    assert created.status_code == 201, created.get_json()
    assert client.post("/api/v1/webhooks", json=hook, headers=merchant).get_json() == \
        created.get_json()
    stored = _stored_replay_bodies(app)
    assert first.get_json()["key"] not in stored
    assert created.get_json()["secret"] not in stored
    assert first.get_json()["id"] not in stored  # the whole answer is sealed, not one field


def test_a_sealed_answer_that_can_no_longer_be_opened_is_a_409(app, client, shop):
    headers = {**shop["admin"], "Idempotency-Key": "key-rotated"}
    path = f"/api/v1/merchants/{shop['merchant_id']}/api-keys"
    assert client.post(path, json={"name": "k"}, headers=headers).status_code == 201
    app.config["SECRET_KEY"] = "a-rotated-secret-key-" + "r" * 32
    refused = client.post(path, json={"name": "k"}, headers=headers)
    assert refused.status_code == 409
    assert "new key" in refused.get_json()["detail"]


def test_overlong_key_is_422(client, shop):
    response = client.post("/api/v1/orders", json=order_body(),
                           headers={**shop["headers"], "Idempotency-Key": "k" * 256})
    assert response.status_code == 422


def test_twenty_concurrent_identical_requests_create_one_order(
    make_app, postgresql_database_url, tmp_path
):
    """Real gunicorn (4 workers) on PostgreSQL, 20 threads sending the same keyed request."""
    app = make_app(postgresql_database_url, RATELIMIT_API="10000 per minute")
    client = app.test_client()
    admin = admin_headers(app, client)
    _, headers = merchant_with_key(client, admin)
    create_product(client, headers, stock=1000)
    headers = {**headers, "Idempotency-Key": "burst-1"}
    with GunicornServer(settings_of(app), tmp_path, workers=4) as server:
        def send(_):
            return requests.post(server.url + "/api/v1/orders", json=order_body(),
                                 headers=headers, timeout=30)

        with ThreadPoolExecutor(20) as pool:
            responses = list(pool.map(send, range(20)))
    statuses = sorted(r.status_code for r in responses)
    assert set(statuses) <= {202, 409}, statuses
    created = [r for r in responses if r.status_code == 202]
    assert len({r.json()["id"] for r in created}) == 1
    assert sum(1 for r in created if "Idempotent-Replayed" not in r.headers) == 1
    assert _orders(app) == 1
