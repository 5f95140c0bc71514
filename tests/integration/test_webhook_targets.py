"""Webhook URLs cannot point the platform at its own network (SSRF), where that is switched on."""

import dataclasses

import pytest

from app.services import outbox, webhooks
from tests.helpers import order_body
from tests.integration.saga_support import merchant_with_stock
from tests.integration.test_webhooks import Receiver


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
