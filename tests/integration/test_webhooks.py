"""Webhooks: the merchant endpoints, and real signed deliveries to a receiver on loopback."""

import hashlib
import hmac
import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from sqlalchemy import select

from tests.helpers import admin_headers, merchant_with_key, order_body
from tests.integration.saga_support import event_types, merchant_with_stock
from tests.servers import SchedulerProcess, WorkerProcess, settings_of

ALL_EVENTS = [
    "order.created",
    "inventory.reserved",
    "payment.captured",
    "shipment.created",
    "order.completed",
]


class Receiver:
    """An HTTP endpoint on loopback that fails the first `failures` tries of each event."""

    def __init__(self, failures: int = 0):
        self.received: list[dict] = []
        self.tries: dict[str, int] = {}
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802 - http.server's naming
                body = self.rfile.read(int(self.headers["Content-Length"]))
                event_id = json.loads(body)["id"]
                receiver.tries[event_id] = receiver.tries.get(event_id, 0) + 1
                ok = receiver.tries[event_id] > failures
                receiver.received.append(
                    {"body": body, "headers": dict(self.headers), "ok": ok}
                )
                self.send_response(200 if ok else 500)
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hooks"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def delivered(self) -> list[dict]:
        return [r for r in self.received if r["ok"]]

    def close(self):
        self.server.shutdown()


def verify(secret: str, header: str, body: bytes) -> bool:
    parts = dict(item.split("=", 1) for item in header.split(","))
    expected = hmac.new(secret.encode(), f"{parts['t']}.".encode() + body, hashlib.sha256)
    fresh = abs(time.time() - int(parts["t"])) < 300
    return fresh and hmac.compare_digest(expected.hexdigest(), parts["v1"])


def test_a_merchant_registers_lists_and_deletes_webhooks_and_sees_the_secret_once(app, client):
    from app.extensions import db
    from app.infra.models import Webhook

    merchant = merchant_with_stock(app, client)
    created = client.post(
        "/api/v1/webhooks",
        json={"url": "https://example.com/hooks", "events": ["order.completed"]},
        headers={**merchant, "Idempotency-Key": "hook-1"},
    )
    assert created.status_code == 201
    body = created.get_json()
    assert set(body) == {"id", "url", "events", "secret", "created_at"}
    assert body["secret"].startswith("whsec_")

    listed = client.get("/api/v1/webhooks", headers=merchant).get_json()
    assert [w["id"] for w in listed["data"]] == [body["id"]]
    assert "secret" not in listed["data"][0]
    with app.app_context():
        stored = db.session.scalar(select(Webhook.secret_encrypted))
    assert body["secret"] not in stored  # encrypted at rest

    replay = client.post(
        "/api/v1/webhooks",
        json={"url": "https://example.com/hooks", "events": ["order.completed"]},
        headers={**merchant, "Idempotency-Key": "hook-1"},
    )
    assert replay.headers.get("Idempotent-Replayed") == "true"
    assert len(client.get("/api/v1/webhooks", headers=merchant).get_json()["data"]) == 1

    assert client.delete(f"/api/v1/webhooks/{body['id']}", headers=merchant).status_code == 204
    assert client.get("/api/v1/webhooks", headers=merchant).get_json()["data"] == []
    assert client.delete(f"/api/v1/webhooks/{body['id']}", headers=merchant).status_code == 404


def test_webhooks_are_merchant_only_and_private_to_their_merchant(sqlite_app, sqlite_client):
    app, client = sqlite_app, sqlite_client
    admin = admin_headers(app, client)
    _, first = merchant_with_key(client, admin, "First")
    _, second = merchant_with_key(client, admin, "Second")
    hook = client.post(
        "/api/v1/webhooks",
        json={"url": "https://example.com/a", "events": ["order.failed"]},
        headers=first,
    ).get_json()
    assert client.delete(f"/api/v1/webhooks/{hook['id']}", headers=second).status_code == 404
    assert (
        client.get(f"/api/v1/webhooks/{hook['id']}/deliveries", headers=second).status_code == 404
    )
    assert client.get("/api/v1/webhooks", headers=second).get_json()["data"] == []
    assert client.get("/api/v1/webhooks", headers=admin).status_code == 403
    assert client.get("/api/v1/webhooks").status_code == 401


@pytest.mark.parametrize(
    ("payload", "field"),
    [
        ({"url": "ftp://example.com/x", "events": ["order.completed"]}, "url"),
        ({"url": "https://example.com/x", "events": ["order.exploded"]}, "events[0]"),
        ({"url": "https://example.com/x", "events": []}, "events"),
        ({"url": "https://example.com/x", "events": ["order.completed"], "secret": "x"}, "secret"),
    ],
)
def test_an_invalid_webhook_is_refused_with_the_field_named(
    sqlite_app, sqlite_client, payload, field
):
    merchant = merchant_with_stock(sqlite_app, sqlite_client)
    refused = sqlite_client.post("/api/v1/webhooks", json=payload, headers=merchant)
    assert refused.status_code == 422
    assert field in [e["field"] for e in refused.get_json()["errors"]]


def test_a_receiver_that_fails_twice_gets_every_event_in_order_with_valid_signatures(
    app, tmp_path
):
    client = app.test_client()
    merchant = merchant_with_stock(app, client)
    receiver = Receiver(failures=2)
    try:
        hook = client.post(
            "/api/v1/webhooks", json={"url": receiver.url, "events": ALL_EVENTS}, headers=merchant
        ).get_json()
        order_id = client.post("/api/v1/orders", json=order_body(), headers=merchant).get_json()[
            "id"
        ]
        settings = {**settings_of(app), "WEBHOOK_RETRY_BASE_SECONDS": 0.3}
        with WorkerProcess(settings, tmp_path), SchedulerProcess(settings, tmp_path):
            deadline = time.monotonic() + 60
            while len(receiver.delivered()) < len(ALL_EVENTS) and time.monotonic() < deadline:
                time.sleep(0.2)
    finally:
        receiver.close()

    delivered = receiver.delivered()
    bodies = [json.loads(r["body"]) for r in delivered]
    assert [b["type"] for b in bodies] == event_types(client, merchant, order_id)
    assert all(receiver.tries[b["id"]] == 3 for b in bodies)  # the third try got through
    for record, body in zip(delivered, bodies, strict=True):
        assert verify(hook["secret"], record["headers"]["X-Webhook-Signature"], record["body"])
        assert set(body) == {"id", "type", "created_at", "data"}
        assert body["data"]["order"]["id"] == order_id
    # Each delivery describes the order as of its event, not as of its (later) sending.
    status_of = {b["type"]: b["data"]["order"]["status"] for b in bodies}
    assert status_of["order.created"] == "pending"
    assert status_of["payment.captured"] == "processing"
    assert status_of["order.completed"] == "completed"
    # Every try, failed ones included, was signed; a wrong secret never verifies.
    for record in receiver.received:
        assert verify(hook["secret"], record["headers"]["X-Webhook-Signature"], record["body"])
    signature = delivered[0]["headers"]["X-Webhook-Signature"]
    assert not verify("whsec_wrong", signature, delivered[0]["body"])

    log = client.get(f"/api/v1/webhooks/{hook['id']}/deliveries", headers=merchant).get_json()
    first = next(d for d in log["data"] if d["type"] == "order.created")
    assert first["status"] == "delivered"
    assert [a["status_code"] for a in first["attempts"]] == [500, 500, 200]
    assert first["attempts"][0]["error"] == "endpoint answered HTTP 500"


def test_a_dead_endpoint_gets_max_attempts_then_is_given_up_and_later_events_proceed(
    sqlite_app, sqlite_client
):
    from app.services import outbox, webhooks

    app, client = sqlite_app, sqlite_client
    merchant = merchant_with_stock(app, client)
    receiver = Receiver(failures=100)
    try:
        hook = client.post(
            "/api/v1/webhooks",
            json={"url": receiver.url, "events": ["order.created", "order.cancel_requested"]},
            headers=merchant,
        ).get_json()
        order_id = client.post("/api/v1/orders", json=order_body(), headers=merchant).get_json()[
            "id"
        ]
        client.post(f"/api/v1/orders/{order_id}/cancel", headers=merchant)
        settings = webhooks.DeliverySettings(
            master_key=app.config["WEBHOOK_MASTER_KEY"], max_attempts=5, retry_base_seconds=0,
            allow_private=True,  # the receiver is on loopback
        )
        with app.app_context():
            assert outbox.publish_pending_events() == [(hook["id"], order_id)]
            assert outbox.publish_pending_events() == []  # published once only
            for _ in range(10):
                webhooks.deliver_pending(hook["id"], order_id, settings)
    finally:
        receiver.close()

    types = [json.loads(r["body"])["type"] for r in receiver.received]
    assert types == ["order.created"] * 5 + ["order.cancel_requested"] * 5
    log = client.get(f"/api/v1/webhooks/{hook['id']}/deliveries", headers=merchant).get_json()
    assert [(d["type"], d["status"], len(d["attempts"])) for d in log["data"]] == [
        ("order.cancel_requested", "failed", 5),
        ("order.created", "failed", 5),
    ]
    with app.app_context():
        timeline = webhooks.order_deliveries(order_id)  # what the dashboard's order page shows
    assert [len(item["attempts"]) for item in timeline] == [5, 5]
    assert {item["url"] for item in timeline} == {receiver.url}


def test_a_deleted_webhook_receives_nothing_more(sqlite_app, sqlite_client):
    from app.services import outbox

    app, client = sqlite_app, sqlite_client
    merchant = merchant_with_stock(app, client)
    hook = client.post(
        "/api/v1/webhooks",
        json={"url": "http://127.0.0.1:9/never", "events": ["order.created"]},
        headers=merchant,
    ).get_json()
    client.delete(f"/api/v1/webhooks/{hook['id']}", headers=merchant)
    client.post("/api/v1/orders", json=order_body(), headers=merchant)
    with app.app_context():
        assert outbox.publish_pending_events() == []


def test_the_relay_skips_events_a_saga_transaction_holds_instead_of_waiting(
    make_app, postgresql_database_url
):
    """A worker's final transaction marks its order's events published; the scheduler's relay,
    marking the same rows in another order, deadlocked with it. It now skips rows held by
    another transaction (they are that transaction's to publish) and never waits."""
    import threading

    from sqlalchemy import text

    from app.extensions import db
    from app.services import outbox

    app = make_app(postgresql_database_url)
    client = app.test_client()
    merchant = merchant_with_stock(app, client)
    held, free = (client.post("/api/v1/orders", json=order_body(), headers=merchant)
                  .get_json()["id"] for _ in range(2))
    with app.app_context():
        saga_transaction = db.engine.connect()
        saga_transaction.begin()
        saga_transaction.execute(text(
            "SELECT id FROM order_events WHERE order_id = :o FOR UPDATE"), {"o": held})
        relay = threading.Thread(target=lambda: _publish_in(app, outbox))
        relay.start()
        relay.join(timeout=10)
        assert not relay.is_alive(), "the relay waited for the saga's transaction"
        saga_transaction.rollback()
        saga_transaction.close()
        unpublished = db.session.execute(text(
            "SELECT order_id FROM order_events WHERE published_at IS NULL")).scalars().all()
        db.session.rollback()
    assert unpublished == [held] and free not in unpublished


def _publish_in(app, outbox) -> None:
    with app.app_context():
        outbox.publish_pending_events()
