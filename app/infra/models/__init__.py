"""SQLAlchemy models, one module per area; importing this package registers every table."""

from app.infra.models.accounts import ApiKey, Merchant, User
from app.infra.models.audit import AuditEntry
from app.infra.models.catalog import Product
from app.infra.models.flags import FeatureFlag
from app.infra.models.idempotency import IdempotencyRecord
from app.infra.models.knowledge import (
    ActionItem,
    KbArticle,
    Postmortem,
    Runbook,
    RunbookRun,
    RunbookRunStep,
    RunbookStep,
)
from app.infra.models.orders import Order, OrderEvent, OrderLine, SagaStep, SagaStepAttempt
from app.infra.models.providers import ProviderPayment, ProviderShipment
from app.infra.models.webhooks import Webhook, WebhookDelivery, WebhookDeliveryAttempt

__all__ = [
    "ActionItem",
    "ApiKey",
    "AuditEntry",
    "FeatureFlag",
    "IdempotencyRecord",
    "KbArticle",
    "Merchant",
    "Order",
    "OrderEvent",
    "OrderLine",
    "Postmortem",
    "Product",
    "ProviderPayment",
    "ProviderShipment",
    "Runbook",
    "RunbookRun",
    "RunbookRunStep",
    "RunbookStep",
    "SagaStep",
    "SagaStepAttempt",
    "User",
    "Webhook",
    "WebhookDelivery",
    "WebhookDeliveryAttempt",
]
