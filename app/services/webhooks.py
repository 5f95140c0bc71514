"""Merchant webhooks: endpoints, signed deliveries with retries, and the delivery log.

A delivery is `POST url` with the event as JSON and `X-Webhook-Signature: t=<unix>,v1=<hex>`,
where v1 = HMAC-SHA256(secret, "<t>.<raw body>"). Non-2xx answers and timeouts are retried with
exponential backoff and jitter up to WEBHOOK_MAX_ATTEMPTS; every attempt is recorded. The events of
one order reach one endpoint in order: a later event waits until the earlier one is delivered or
given up.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import hmac
import logging
import secrets
import time
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import requests
from cryptography.fernet import Fernet
from sqlalchemy import select

from app.domain.errors import FieldError, NotFound, ValidationFailed
from app.domain.ids import new_id
from app.domain.retry import RetryPolicy
from app.domain.saga import ORDER_EVENT_TYPES
from app.extensions import db
from app.infra.models import Webhook, WebhookDelivery, WebhookDeliveryAttempt
from app.infra.models.base import utcnow
from app.infra.network import private_targets_allowed, resolves_to_public_addresses
from app.observability.metrics import record_webhook_delivery
from app.services import audit
from app.services.pagination import Page, paginate

log = logging.getLogger(__name__)
SIGNATURE_HEADER = "X-Webhook-Signature"
MAX_WEBHOOKS_PER_MERCHANT = 20


# --- secrets: shown once, stored encrypted under WEBHOOK_MASTER_KEY ---


def _fernet(master_key: str) -> Fernet:
    return Fernet(base64.urlsafe_b64encode(hashlib.sha256(master_key.encode()).digest()))


def encrypt_secret(secret: str, master_key: str) -> str:
    return _fernet(master_key).encrypt(secret.encode()).decode()


def decrypt_secret(token: str, master_key: str) -> str:
    return _fernet(master_key).decrypt(token.encode()).decode()


def sign(secret: str, timestamp: int, body: bytes) -> str:
    """The X-Webhook-Signature header value for `body` sent at `timestamp`."""
    digest = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256)
    return f"t={timestamp},v1={digest.hexdigest()}"


def signature_header(webhook: Webhook, master_key: str, timestamp: int, body: bytes) -> str:
    """The signature header: one v1 per secret in force (two during a rotation's overlap)."""
    header = sign(decrypt_secret(webhook.secret_encrypted, master_key), timestamp, body)
    expires = webhook.previous_secret_expires_at
    if webhook.previous_secret_encrypted and expires and expires > utcnow():
        previous = decrypt_secret(webhook.previous_secret_encrypted, master_key)
        header += "," + sign(previous, timestamp, body).split(",", 1)[1]
    return header


def rotate_webhook_secret(
    webhook_id: str, merchant_id: str, overlap_seconds: int, master_key: str, actor: audit.Actor
) -> CreatedWebhook:
    """A new signing secret (returned once); the old one also signs for `overlap_seconds`."""
    if not 0 <= overlap_seconds <= 30 * 86400:
        raise ValidationFailed([FieldError("overlap_seconds", "must be 0 to 2592000")])
    webhook = get_webhook(webhook_id, merchant_id)
    secret = "whsec_" + secrets.token_urlsafe(32)
    until = utcnow() + dt.timedelta(seconds=overlap_seconds)
    webhook.previous_secret_encrypted = webhook.secret_encrypted
    webhook.previous_secret_expires_at = until
    webhook.secret_encrypted = encrypt_secret(secret, master_key)
    audit.record(actor, "webhook.rotate_secret", "webhook", webhook.id,
                 after={"previous_secret_expires_at": until.isoformat()})
    db.session.commit()
    return CreatedWebhook(webhook, secret)


# --- endpoints ---


def _check(url: str, events: list[str], allow_private: bool) -> None:
    errors = []
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        errors.append(FieldError("url", "must be an absolute http or https URL"))
    elif not allow_private and not resolves_to_public_addresses(url):
        errors.append(FieldError("url", "must resolve to a public internet address"))
    if not events:
        errors.append(FieldError("events", "name at least one event type"))
    for index, event in enumerate(events):
        if event not in ORDER_EVENT_TYPES:
            errors.append(FieldError(f"events[{index}]", f"unknown event type {event!r}"))
    if errors:
        raise ValidationFailed(errors)


@dataclass
class CreatedWebhook:
    webhook: Webhook
    secret: str  # in clear: returned to the caller once, never stored


def create_webhook(
    merchant_id: str,
    url: str,
    events: list[str],
    master_key: str,
    actor: audit.Actor,
    allow_private: bool = False,
) -> CreatedWebhook:
    """Register an endpoint; the signing secret is returned here and never again."""
    events = list(dict.fromkeys(events))
    _check(url, events, allow_private)
    active = db.session.scalars(
        select(Webhook.seq).where(Webhook.merchant_id == merchant_id, Webhook.deleted_at.is_(None))
    ).all()
    if len(active) >= MAX_WEBHOOKS_PER_MERCHANT:
        raise ValidationFailed(
            [FieldError("url", f"at most {MAX_WEBHOOKS_PER_MERCHANT} webhooks per merchant")]
        )
    secret = "whsec_" + secrets.token_urlsafe(32)
    webhook = Webhook(
        id=new_id("wh"),
        merchant_id=merchant_id,
        url=url,
        events=events,
        secret_encrypted=encrypt_secret(secret, master_key),
        created_at=utcnow(),
    )
    db.session.add(webhook)
    audit.record(
        actor, "webhook.create", "webhook", webhook.id, after={"url": url, "events": events}
    )
    db.session.commit()
    return CreatedWebhook(webhook, secret)


def get_webhook(webhook_id: str, merchant_id: str) -> Webhook:
    """The merchant's live webhook; another merchant's (or a deleted one) is NotFound."""
    webhook = db.session.scalar(
        select(Webhook).where(
            Webhook.id == webhook_id,
            Webhook.merchant_id == merchant_id,
            Webhook.deleted_at.is_(None),
        )
    )
    if webhook is None:
        raise NotFound("webhook")
    return webhook


def list_webhooks(merchant_id: str, limit: int | None, cursor: str | None) -> Page:
    query = select(Webhook).where(Webhook.merchant_id == merchant_id, Webhook.deleted_at.is_(None))
    return paginate(query, Webhook.seq, limit, cursor)


def delete_webhook(webhook_id: str, merchant_id: str, actor: audit.Actor) -> None:
    """Stop sending to the endpoint; pending deliveries are dropped, history is kept."""
    webhook = get_webhook(webhook_id, merchant_id)
    webhook.deleted_at = utcnow()
    for delivery in db.session.scalars(
        select(WebhookDelivery).where(
            WebhookDelivery.webhook_id == webhook.id, WebhookDelivery.status == "pending"
        )
    ):
        delivery.status = "failed"
        delivery.last_error = "webhook deleted"
    audit.record(actor, "webhook.delete", "webhook", webhook.id, before={"url": webhook.url})
    db.session.commit()


# --- the delivery log ---


def list_deliveries(webhook_id: str, merchant_id: str, limit: int | None, cursor: str | None):
    """A page of one webhook's deliveries, newest first, each with its attempts."""
    get_webhook(webhook_id, merchant_id)
    query = select(WebhookDelivery).where(WebhookDelivery.webhook_id == webhook_id)
    page = paginate(query, WebhookDelivery.seq, limit, cursor)
    return page, attempts_of([d.id for d in page.items])


def order_deliveries(order_id: str) -> list[dict[str, Any]]:
    """Every delivery of one order's events with its attempts, oldest first (dashboard page)."""
    deliveries = list(
        db.session.scalars(
            select(WebhookDelivery)
            .where(WebhookDelivery.order_id == order_id)
            .order_by(WebhookDelivery.seq)
        )
    )
    attempts = attempts_of([d.id for d in deliveries])
    urls = dict(
        db.session.execute(
            select(Webhook.id, Webhook.url).where(
                Webhook.id.in_({d.webhook_id for d in deliveries})
            )
        ).all()
    )
    return [
        {
            "delivery": delivery,
            "url": urls.get(delivery.webhook_id),
            "attempts": attempts.get(delivery.id, []),
        }
        for delivery in deliveries
    ]


def attempts_of(delivery_ids: list[str]) -> dict[str, list[WebhookDeliveryAttempt]]:
    grouped: dict[str, list[WebhookDeliveryAttempt]] = {d: [] for d in delivery_ids}
    if delivery_ids:
        for attempt in db.session.scalars(
            select(WebhookDeliveryAttempt)
            .where(WebhookDeliveryAttempt.delivery_id.in_(delivery_ids))
            .order_by(WebhookDeliveryAttempt.seq)
        ):
            grouped[attempt.delivery_id].append(attempt)
    return grouped


# --- sending ---


@dataclass(frozen=True)
class DeliverySettings:
    master_key: str
    max_attempts: int = 8
    retry_base_seconds: float = 1.0
    timeout_seconds: float = 5.0
    allow_private: bool = False

    @property
    def retry(self) -> RetryPolicy:
        return RetryPolicy(
            max_attempts=self.max_attempts, base_delay=self.retry_base_seconds, max_delay=3600.0
        )


def delivery_settings(config) -> DeliverySettings:
    return DeliverySettings(
        master_key=config["WEBHOOK_MASTER_KEY"],
        max_attempts=int(config["WEBHOOK_MAX_ATTEMPTS"]),
        retry_base_seconds=float(config["WEBHOOK_RETRY_BASE_SECONDS"]),
        timeout_seconds=float(config["WEBHOOK_TIMEOUT_SECONDS"]),
        allow_private=private_targets_allowed(config),
    )


def _post(url: str, body: bytes, headers: dict[str, str], timeout: float) -> tuple[int | None, str]:
    """POST and report (status, error); never raises for network trouble."""
    try:
        response = requests.post(
            url, data=body, headers=headers, timeout=timeout, allow_redirects=False
        )
    except requests.RequestException as exc:
        return None, _network_failure(exc, timeout)
    if 200 <= response.status_code < 300:
        return response.status_code, ""
    return response.status_code, f"endpoint answered HTTP {response.status_code}"


def _network_failure(exc: requests.RequestException, timeout: float) -> str:
    """What went wrong, in the merchant's terms: never the HTTP library's exception names."""
    if isinstance(exc, requests.ConnectTimeout):
        return f"could not connect to the endpoint within {timeout:g} s"
    if isinstance(exc, requests.Timeout):
        return f"the endpoint did not answer within {timeout:g} s"
    if isinstance(exc, requests.exceptions.SSLError):
        return "TLS handshake with the endpoint failed (certificate or protocol)"
    if isinstance(exc, requests.ConnectionError):
        return "could not connect to the endpoint, or it closed the connection"
    return "no valid HTTP answer from the endpoint"


def _attempt(delivery: WebhookDelivery, webhook: Webhook, settings: DeliverySettings) -> bool:
    """Send one delivery once, record the attempt and schedule a retry; True when delivered."""
    body = delivery.body.encode()
    headers = {
        "Content-Type": "application/json",
        "User-Agent": "orderprocessing-webhooks/1",
        "X-Webhook-Id": delivery.id,
        "X-Webhook-Event": delivery.event_type,
        SIGNATURE_HEADER: signature_header(webhook, settings.master_key, int(time.time()), body),
    }
    db.session.commit()  # no transaction (or SQLite lock) held across the network call
    started = time.perf_counter()
    if not settings.allow_private and not resolves_to_public_addresses(webhook.url):
        # Checked again at send time: DNS may have changed since the webhook was registered.
        status_code, error = None, "endpoint resolves to a non-public address; not sent"
    else:
        status_code, error = _post(webhook.url, body, headers, settings.timeout_seconds)
    now = utcnow()
    delivery.attempts += 1
    db.session.add(
        WebhookDeliveryAttempt(
            delivery_id=delivery.id,
            attempt=delivery.attempts,
            at=now,
            status_code=status_code,
            error=error or None,
            duration_ms=round((time.perf_counter() - started) * 1000, 3),
        )
    )
    if not error:
        delivery.status, delivery.delivered_at, delivery.last_error = "delivered", now, None
    else:
        delivery.last_error = error
        if settings.retry.exhausted(delivery.attempts):
            delivery.status = "failed"
        else:
            delay = settings.retry.delay(delivery.attempts)
            delivery.next_attempt_at = now + dt.timedelta(seconds=delay)
    db.session.commit()
    record_webhook_delivery(
        "delivered" if not error else ("failed" if delivery.status == "failed" else "retry")
    )
    return not error


def deliver_pending(webhook_id: str, order_id: str, settings: DeliverySettings) -> int:
    """Send the due deliveries of one (endpoint, order) oldest first; stop at the first that must
    wait, so events never overtake each other. The caller holds the (endpoint, order) lock."""
    sent = 0
    while True:
        db.session.expire_all()
        delivery = db.session.scalar(
            select(WebhookDelivery)
            .where(
                WebhookDelivery.webhook_id == webhook_id,
                WebhookDelivery.order_id == order_id,
                WebhookDelivery.status == "pending",
            )
            .order_by(WebhookDelivery.event_seq)
            .limit(1)
        )
        if delivery is None or delivery.next_attempt_at > utcnow():
            db.session.rollback()
            return sent
        webhook = db.session.scalar(select(Webhook).where(Webhook.id == webhook_id))
        if not _attempt(delivery, webhook, settings):
            return sent
        sent += 1


def due_targets(limit: int = 500) -> list[tuple[str, str]]:
    """(endpoint, order) pairs with a delivery due now: the scheduler queues their senders."""
    rows = db.session.execute(
        select(WebhookDelivery.webhook_id, WebhookDelivery.order_id)
        .where(WebhookDelivery.status == "pending", WebhookDelivery.next_attempt_at <= utcnow())
        .group_by(WebhookDelivery.webhook_id, WebhookDelivery.order_id)
        .limit(limit)
    ).all()
    db.session.rollback()
    return [(w, o) for w, o in rows]
