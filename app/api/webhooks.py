"""Webhooks: register, list, delete, the delivery log (merchant only), and the deliveries the
app sends (described as the OpenAPI document's top-level `webhooks`)."""

from __future__ import annotations

from typing import Annotated, Any

from flask import current_app, request
from pydantic import BaseModel, Field, StrictInt

from app.api import api
from app.api.access import acting_merchant
from app.api.idempotency import holds_secret, idempotent
from app.api.openapi import documented, documented_webhook
from app.api.parsing import PAGE_QUERY, parse_body, query_int
from app.api.schemas import OrderOut, Out, Strict, Timestamp
from app.api.serializers import no_content, rfc3339
from app.auth.actors import request_actor
from app.auth.decorators import require_permission
from app.domain.saga import ORDER_EVENT_TYPES
from app.services import webhooks

# The event types a webhook may subscribe to. The enum only documents them: the service refuses
# an unknown one itself, naming `events[i]` next to any `url` error (a Literal would make pydantic
# refuse it first, with its own message and without the other fields' errors).
EVENT_TYPES = sorted(ORDER_EVENT_TYPES)
EventType = Annotated[str, Field(json_schema_extra={"enum": EVENT_TYPES})]


class WebhookCreate(Strict):
    url: str = Field(min_length=1, max_length=2048)
    events: list[EventType] = Field(min_length=1, max_length=50)


class WebhookOut(BaseModel):
    id: str
    url: str
    events: list[str]
    created_at: str


class WebhookCreated(WebhookOut):
    secret: str = Field(description="The signing secret: shown only in this answer")


class WebhookPage(BaseModel):
    data: list[WebhookOut]
    next_cursor: str | None


class DeliveryAttemptOut(BaseModel):
    attempt: int
    at: str
    status_code: int | None
    error: str | None
    duration_ms: float


class DeliveryOut(BaseModel):
    id: str
    event_id: str
    type: str
    order_id: str
    status: str
    attempts: list[DeliveryAttemptOut]
    next_attempt_at: str | None
    delivered_at: str | None
    last_error: str | None


class DeliveryPage(BaseModel):
    data: list[DeliveryOut]
    next_cursor: str | None


# --- What a delivery carries: the body built by services/outbox.py, and its headers. ---


class WebhookEventData(Out):
    order: OrderOut = Field(
        description="The order as the API shows it, as of the event: an `order.created` "
        "delivered after the saga finished still says `pending`; `updated_at` is the event's time"
    )
    detail: dict[str, Any] = Field(
        description="What the event adds (as on GET /api/v1/orders/{order_id}/events); "
        "often empty"
    )


class WebhookEvent(Out):
    """The JSON body of a webhook delivery (compact JSON: verify the signature on the raw bytes)."""

    id: str = Field(description="The event's id: the same on every retry, so receivers can "
                    "drop duplicates")
    type: EventType
    created_at: str = Timestamp
    data: WebhookEventData


SIGNATURE_FORMAT = (
    "`t=<unix seconds>,v1=<hex HMAC-SHA256(secret, \"<t>.<raw body>\")>`. During a secret "
    "rotation's overlap the header carries a second `v1=`, made with the previous secret "
    "(`t=<t>,v1=<new>,v1=<previous>`): accept the delivery if any `v1` matches, and reject "
    "an old `t` to stop replays."
)

documented_webhook(
    "orderEvent",
    "An order event, POSTed to every webhook subscribed to its type",
    description=(
        "Sent for each event of an order whose `type` the webhook lists in `events`; the events "
        "of one order reach an endpoint in order (a later one waits until the earlier one is "
        "delivered or given up). Any 2xx answer means delivered. Anything else (redirects are "
        "not followed) or no answer within WEBHOOK_TIMEOUT_SECONDS is retried with "
        "exponential backoff and jitter, up to WEBHOOK_MAX_ATTEMPTS attempts in all; each "
        "attempt is listed by GET /api/v1/webhooks/{webhook_id}/deliveries."
    ),
    body=WebhookEvent,
    headers={
        webhooks.SIGNATURE_HEADER: (
            SIGNATURE_FORMAT,
            {"type": "string", "pattern": r"^t=[0-9]+(,v1=[0-9a-f]{64}){1,2}$"},
        ),
        "X-Webhook-Id": (
            "The delivery's id (the `id` in the delivery log); the same on every retry",
            {"type": "string"},
        ),
        "X-Webhook-Event": ("The event type, as in the body's `type`", {"type": "string",
                                                                        "enum": EVENT_TYPES}),
    },
    responses={
        "2XX": "Delivered: not sent again",
        "default": "Not delivered (any other status, or no answer in time): retried with "
        "exponential backoff until WEBHOOK_MAX_ATTEMPTS attempts, then given up",
    },
)


def webhook_json(w, secret: str | None = None) -> dict:
    body = {"id": w.id, "url": w.url, "events": w.events, "created_at": rfc3339(w.created_at)}
    if secret is not None:
        body["secret"] = secret
    return body


def delivery_json(d, attempts) -> dict:
    return {
        "id": d.id,
        "event_id": d.event_id,
        "type": d.event_type,
        "order_id": d.order_id,
        "status": d.status,
        "attempts": [
            {
                "attempt": a.attempt,
                "at": rfc3339(a.at),
                "status_code": a.status_code,
                "error": a.error,
                "duration_ms": a.duration_ms,
            }
            for a in attempts
        ],
        "next_attempt_at": rfc3339(d.next_attempt_at) if d.status == "pending" else None,
        "delivered_at": rfc3339(d.delivered_at),
        "last_error": d.last_error,
    }


@api.post("/webhooks")
@documented(
    "Register a webhook (the signing secret is shown only here)",
    body=WebhookCreate,
    responses={201: WebhookCreated},
    tag="webhooks",
)
@require_permission("api:merchant")
@idempotent
@holds_secret
def create_webhook():
    merchant_id = acting_merchant()
    body = parse_body(WebhookCreate)
    created = webhooks.create_webhook(
        merchant_id,
        body.url,
        body.events,
        current_app.config["WEBHOOK_MASTER_KEY"],
        request_actor("api"),
        allow_private=webhooks.private_targets_allowed(current_app.config),
    )
    return webhook_json(created.webhook, created.secret), 201


class WebhookRotate(Strict):
    overlap_seconds: StrictInt = Field(default=86400, ge=0, le=30 * 86400)


class WebhookRotatedOut(WebhookCreated):
    previous_secret_expires_at: str


@api.post("/webhooks/<webhook_id>/rotate-secret")
@documented(
    "Rotate a webhook's signing secret; deliveries carry both signatures during the overlap",
    body=WebhookRotate,
    responses={201: WebhookRotatedOut},
    tag="webhooks",
)
@require_permission("api:merchant")
@idempotent
@holds_secret
def rotate_webhook_secret(webhook_id: str):
    body = parse_body(WebhookRotate)
    rotated = webhooks.rotate_webhook_secret(
        webhook_id, acting_merchant(), body.overlap_seconds,
        current_app.config["WEBHOOK_MASTER_KEY"], request_actor("api"),
    )
    answer = webhook_json(rotated.webhook, rotated.secret)
    answer["previous_secret_expires_at"] = rfc3339(rotated.webhook.previous_secret_expires_at)
    return answer, 201


@api.get("/webhooks")
@documented("List webhooks", responses={200: WebhookPage}, query=PAGE_QUERY, tag="webhooks")
@require_permission("api:merchant")
def list_webhooks():
    page = webhooks.list_webhooks(
        acting_merchant(), query_int("limit"), request.args.get("cursor")
    )
    return {"data": [webhook_json(w) for w in page.items], "next_cursor": page.next_cursor}


@api.delete("/webhooks/<webhook_id>")
@documented("Delete a webhook", responses={204: None}, tag="webhooks")
@require_permission("api:merchant")
def delete_webhook(webhook_id: str):
    webhooks.delete_webhook(webhook_id, acting_merchant(), request_actor("api"))
    return no_content()


@api.get("/webhooks/<webhook_id>/deliveries")
@documented(
    "A webhook's deliveries, newest first, with every attempt",
    responses={200: DeliveryPage},
    query=PAGE_QUERY,
    tag="webhooks",
)
@require_permission("api:merchant")
def list_deliveries(webhook_id: str):
    page, attempts = webhooks.list_deliveries(
        webhook_id, acting_merchant(), query_int("limit"), request.args.get("cursor")
    )
    return {
        "data": [delivery_json(d, attempts[d.id]) for d in page.items],
        "next_cursor": page.next_cursor,
    }
