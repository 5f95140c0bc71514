"""Webhook URLs cannot point the platform at its own network (SSRF), where that is switched on."""

import dataclasses
import socket
import threading

import pytest

from app.services import outbox, webhooks
from tests.helpers import order_body
from tests.integration.saga_support import merchant_with_stock
from tests.integration.test_webhooks import Receiver
from tests.servers import free_port


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:8000/hooks",
        "http://localhost/hooks",
        "http://10.1.2.3/hooks",
        "http://169.254.169.254/latest/meta-data",
        "http://[::1]/hooks",
        "http://192.168.0.10/x",
    ],
)
def test_private_and_metadata_addresses_are_refused_when_not_allowed(
    make_app, sqlite_database_url, url
):
    app = make_app(sqlite_database_url, WEBHOOK_ALLOW_PRIVATE_TARGETS=False)
    client = app.test_client()
    merchant = merchant_with_stock(app, client)
    response = client.post(
        "/api/v1/webhooks", json={"url": url, "events": ["order.created"]}, headers=merchant
    )
    assert response.status_code == 422
    assert response.get_json()["errors"] == [
        {"field": "url", "message": "must resolve to a public internet address"}
    ]


def test_private_targets_are_refused_by_default_in_production_only():
    from app.infra.network import private_targets_allowed

    assert private_targets_allowed({"ENV": "development"}) is True
    assert private_targets_allowed({"ENV": "production"}) is False
    assert private_targets_allowed({"ENV": "production", "WEBHOOK_ALLOW_PRIVATE_TARGETS": True})


def test_a_target_that_turned_private_is_not_sent_to(sqlite_app, sqlite_client):
    """Checked again at send time: a public name may later resolve inward (DNS rebinding)."""
    app, client = sqlite_app, sqlite_client
    merchant = merchant_with_stock(app, client)
    receiver = Receiver()
    try:
        hook = client.post(
            "/api/v1/webhooks",
            json={"url": receiver.url, "events": ["order.created"]},
            headers=merchant,
        ).get_json()
        order_id = client.post("/api/v1/orders", json=order_body(), headers=merchant).get_json()[
            "id"
        ]
        settings = dataclasses.replace(webhooks.delivery_settings(app.config), allow_private=False)
        with app.app_context():
            outbox.publish_pending_events()
            webhooks.deliver_pending(hook["id"], order_id, settings)
    finally:
        receiver.close()
    assert receiver.received == []
    log = client.get(f"/api/v1/webhooks/{hook['id']}/deliveries", headers=merchant).get_json()
    attempt = log["data"][0]["attempts"][0]
    assert "non-public address" in attempt["error"]


def _silent_listener() -> socket.socket:
    """A loopback socket that accepts connections and says nothing unless told to."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(8)
    return listener


def test_network_failures_are_told_in_the_merchants_terms_not_the_librarys():
    refused = webhooks._post(f"http://127.0.0.1:{free_port()}/h", b"{}", {}, 0.5)
    assert refused == (None, "could not connect to the endpoint, or it closed the connection")

    silent = _silent_listener()
    try:
        port = silent.getsockname()[1]
        status, error = webhooks._post(f"http://127.0.0.1:{port}/h", b"{}", {}, 0.3)
        assert (status, error) == (None, "the endpoint did not answer within 0.3 s")
    finally:
        silent.close()

    garbage = _silent_listener()

    def answer_garbage():
        connection, _ = garbage.accept()
        connection.recv(65536)
        connection.sendall(b"SSH-2.0-OpenSSH_9.2\r\n")
        connection.close()

    threading.Thread(target=answer_garbage, daemon=True).start()
    try:
        port = garbage.getsockname()[1]
        status, error = webhooks._post(f"http://127.0.0.1:{port}/h", b"{}", {}, 2)
        assert status is None
        assert error in {
            "no valid HTTP answer from the endpoint",
            "could not connect to the endpoint, or it closed the connection",
        }
        assert "Error" not in error and "requests" not in error
    finally:
        garbage.close()
