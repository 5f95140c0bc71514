"""The simulated providers' own ledgers: what the payment and shipping companies would record.

They belong to the simulators (the outside world), not to the order data; they exist so that
tests and `check-integrity` can prove no order was charged twice and each refund happened once.
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy import String
from sqlalchemy.orm import Mapped, mapped_column

from app.extensions import db
from app.infra.models.base import UTCDateTime, utcnow


class ProviderPayment(db.Model):
    __tablename__ = "provider_payments"
    seq: Mapped[int] = mapped_column(primary_key=True, autoincrement=True)
    id: Mapped[str] = mapped_column(String(40), unique=True)
    # The caller's idempotency key: a second call with the same key returns the first result.
    idempotency_key: Mapped[str] = mapped_column(String(120), unique=True)
    kind: Mapped[str] = mapped_column(String(10))  # capture | refund
    order_ref: Mapped[str] = mapped_column(String(40), index=True)
    amount: Mapped[int]
    currency: Mapped[str] = mapped_column(String(3))
    status: Mapped[str] = mapped_column(String(20))  # captured | refunded
    payment_ref: Mapped[str | None] = mapped_column(String(40))  # the capture a refund refers to
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)


class ProviderShipment(db.Model):
    __tablename__ = "provider_shipments"
    seq: Mapped[int] = mapped_column(primary_key=True, autoincrement=True)
    id: Mapped[str] = mapped_column(String(40), unique=True)
    idempotency_key: Mapped[str] = mapped_column(String(120), unique=True)
    order_ref: Mapped[str] = mapped_column(String(40), index=True)
    country: Mapped[str] = mapped_column(String(2))
    status: Mapped[str] = mapped_column(String(20))  # created | cancelled
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
