"""Webhook signing secrets rotate with an overlap window: both signatures, then only the new."""

from __future__ import annotations

import time

from tests.helpers import admin_headers, merchant_with_key


def test_rotated_webhook_secret_signs_with_both_secrets_until_the_overlap_ends(sqlite_client,
                                                                              sqlite_app):
    import hashlib
    import hmac

    from app.infra.models import Webhook
    from app.services import webhooks

    admin = admin_headers(sqlite_app, sqlite_client)
    _merchant, headers = merchant_with_key(sqlite_client, admin)
    created = sqlite_client.post("/api/v1/webhooks", headers=headers, json={
        "url": "https://merchant.example/hooks", "events": ["order.completed"]}).get_json()
    rotated = sqlite_client.post(f"/api/v1/webhooks/{created['id']}/rotate-secret",
                                 json={"overlap_seconds": 1}, headers=headers)
    assert rotated.status_code == 201, rotated.get_json()
    new_secret = rotated.get_json()["secret"]
    assert new_secret != created["secret"]

    def signatures(body: bytes) -> list[str]:
        with sqlite_app.app_context():
            from app.extensions import db

            webhook = db.session.query(Webhook).filter_by(id=created["id"]).one()
            header = webhooks.signature_header(
                webhook, sqlite_app.config["WEBHOOK_MASTER_KEY"], 1700000000, body
            )
        return [part[3:] for part in header.split(",") if part.startswith("v1=")]

    def expected(secret: str, body: bytes) -> str:
        return hmac.new(secret.encode(), b"1700000000." + body, hashlib.sha256).hexdigest()

    body = b'{"type": "order.completed"}'
    assert signatures(body) == [expected(new_secret, body), expected(created["secret"], body)]
    time.sleep(1.1)
    assert signatures(body) == [expected(new_secret, body)]
    other = merchant_with_key(sqlite_client, admin, name="Other")[1]
    assert sqlite_client.post(f"/api/v1/webhooks/{created['id']}/rotate-secret", json={},
                              headers=other).status_code == 404
    # A boolean is no number of seconds (JSON's false must not become 0).
    refused = sqlite_client.post(f"/api/v1/webhooks/{created['id']}/rotate-secret",
                                 json={"overlap_seconds": False}, headers=headers)
    assert refused.status_code == 422
    assert [e["field"] for e in refused.get_json()["errors"]] == ["overlap_seconds"]
