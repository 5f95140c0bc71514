"""Ports: what the domain and services need from the outside world, as Protocols."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Protocol


@dataclass(frozen=True)
class PaymentReceipt:
    payment_id: str
    amount: int
    currency: str


@dataclass(frozen=True)
class ShipmentReceipt:
    shipment_id: str


class PaymentProvider(Protocol):
    """Raises PaymentDeclined (final) or TransientError (retry) besides returning a receipt.

    Every call carries an idempotency key: a repeated call with the same key returns the first
    result and moves no money again.
    """

    def capture(
        self, *, order_id: str, amount: int, currency: str, token: str, idempotency_key: str
    ) -> PaymentReceipt: ...

    def refund(
        self, *, payment_id: str, amount: int, currency: str, idempotency_key: str
    ) -> PaymentReceipt: ...


class ShippingProvider(Protocol):
    """Raises ShipmentRefused (final) or TransientError (retry) besides returning a receipt."""

    def create_shipment(
        self, *, order_id: str, address: Mapping[str, object], idempotency_key: str
    ) -> ShipmentReceipt: ...

    def cancel_shipment(self, *, shipment_id: str, idempotency_key: str) -> None: ...


class JobQueue(Protocol):
    """Hands work to the background workers; called only after the work's data is committed."""

    def enqueue_saga(self, order_id: str, *, request_id: str | None = None) -> None: ...

    def enqueue_sagas(self, order_ids: Iterable[str]) -> int:
        """Many sagas in one batch; an order whose job is still waiting is not queued twice."""
        ...

    def enqueue_webhook_deliveries(self, targets: Iterable[tuple[str, str]]) -> int: ...
