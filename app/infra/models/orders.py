"""Orders, their lines, the durable saga step log and the order event timeline (also the outbox)."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import JSON, CheckConstraint, ForeignKey, Index, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from app.extensions import db
from app.infra.models.base import UTCDateTime, utcnow


class Order(db.Model):
    __tablename__ = "orders"
    __table_args__ = (
        # Merchant lists and dashboard filters page newest first by seq.
        Index("ix_orders_merchant_seq", "merchant_id", "seq"),
        Index("ix_orders_status_seq", "status", "seq"),
        # The scheduler's stuck-saga scan: non-final orders by last progress.
        Index("ix_orders_status_updated", "status", "updated_at"),
        # Dashboard: the failure-reason filter (newest first) and the finished-orders charts.
        Index("ix_orders_failure_reason_seq", "failure_reason", "seq"),
        Index("ix_orders_finished_at", "finished_at"),
        # A merchant's orders in one status, newest first; the SLO scan of unfinished orders.
        Index("ix_orders_merchant_status_seq", "merchant_id", "status", "seq"),
        Index("ix_orders_status_created", "status", "created_at"),
        CheckConstraint("total_amount >= 0", name="total_not_negative"),
    )
    seq: Mapped[int] = mapped_column(primary_key=True, autoincrement=True)
    id: Mapped[str] = mapped_column(String(40), unique=True)
    merchant_id: Mapped[str] = mapped_column(ForeignKey("merchants.id"))
    status: Mapped[str] = mapped_column(String(20), default="pending")
    failure_reason: Mapped[str | None] = mapped_column(String(40))
    currency: Mapped[str] = mapped_column(String(3))
    total_amount: Mapped[int]
    customer_email: Mapped[str] = mapped_column(String(320), index=True)
    customer_name: Mapped[str] = mapped_column(String(200))
    shipping_address: Mapped[dict] = mapped_column(JSON)
    # A provider token (like tok_visa), never card data.
    payment_token: Mapped[str] = mapped_column(String(100))
    # The X-Request-ID of the API call that created the order; worker log lines carry it.
    request_id: Mapped[str | None] = mapped_column(String(128))
    cancel_requested_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    # Bumped on every change: the ETag and the cache key version.
    version: Mapped[int] = mapped_column(default=1)
    # Saga lease: the worker driving the saga and until when its claim holds.
    lease_owner: Mapped[str | None] = mapped_column(String(100))
    lease_expires_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow, index=True)
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    # When the order reached completed, failed or cancelled.
    finished_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)

    lines: Mapped[list[OrderLine]] = relationship(
        back_populates="order", order_by="OrderLine.seq", cascade="all, delete-orphan"
    )


class OrderLine(db.Model):
    __tablename__ = "order_lines"
    __table_args__ = (CheckConstraint("quantity > 0", name="quantity_positive"),)
    seq: Mapped[int] = mapped_column(primary_key=True, autoincrement=True)
    order_id: Mapped[str] = mapped_column(ForeignKey("orders.id"), index=True)
    product_id: Mapped[str] = mapped_column(ForeignKey("products.id"), index=True)
    sku: Mapped[str] = mapped_column(String(64))
    quantity: Mapped[int]
    unit_price: Mapped[int]
    line_total: Mapped[int]

    order: Mapped[Order] = relationship(back_populates="lines")


class SagaStep(db.Model):
    """One step of one order's saga; its status is the durable truth the saga resumes from."""

    __tablename__ = "saga_steps"
    __table_args__ = (UniqueConstraint("order_id", "name", name="uq_saga_steps_order_name"),)
    seq: Mapped[int] = mapped_column(primary_key=True, autoincrement=True)
    order_id: Mapped[str] = mapped_column(ForeignKey("orders.id"), index=True)
    name: Mapped[str] = mapped_column(String(40))
    position: Mapped[int]
    # pending | running | succeeded | failed | compensated
    status: Mapped[str] = mapped_column(String(20), default="pending")
    attempts: Mapped[int] = mapped_column(default=0)
    compensation_attempts: Mapped[int] = mapped_column(default=0)
    # Sent with every provider call of this step, so a retried call never acts twice.
    idempotency_key: Mapped[str] = mapped_column(String(120))
    result: Mapped[dict | None] = mapped_column(JSON)
    error: Mapped[str | None] = mapped_column(Text)
    next_attempt_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    started_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    finished_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    compensated_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)


class SagaStepAttempt(db.Model):
    """Every try of a step or of its compensation: outcome, error and duration."""

    __tablename__ = "saga_step_attempts"
    __table_args__ = (Index("ix_saga_step_attempts_order_seq", "order_id", "seq"),)
    seq: Mapped[int] = mapped_column(primary_key=True, autoincrement=True)
    order_id: Mapped[str] = mapped_column(ForeignKey("orders.id"), index=True)
    step: Mapped[str] = mapped_column(String(40))
    kind: Mapped[str] = mapped_column(String(20))  # action | compensation
    attempt: Mapped[int]
    outcome: Mapped[str] = mapped_column(String(20))  # succeeded | retryable_error | failed
    error: Mapped[str | None] = mapped_column(Text)
    started_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    duration_ms: Mapped[float]
    worker: Mapped[str | None] = mapped_column(String(100))


class OrderEvent(db.Model):
    """The order's business timeline, written in the same transaction as the change it describes.

    It doubles as the transactional outbox: `published_at` is set once the event has been handed to
    its consumers (webhooks, metrics), which happens only after the writing transaction committed.
    """

    __tablename__ = "order_events"
    __table_args__ = (
        Index("ix_order_events_order_seq", "order_id", "seq"),
        Index("ix_order_events_unpublished", "published_at", "seq"),
    )
    seq: Mapped[int] = mapped_column(primary_key=True, autoincrement=True)
    id: Mapped[str] = mapped_column(String(40), unique=True)
    order_id: Mapped[str] = mapped_column(ForeignKey("orders.id"))
    merchant_id: Mapped[str] = mapped_column(String(40))
    type: Mapped[str] = mapped_column(String(40))
    at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    detail: Mapped[dict] = mapped_column(JSON, default=dict)
    request_id: Mapped[str | None] = mapped_column(String(128))
    published_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
