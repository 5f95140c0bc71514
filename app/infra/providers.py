"""Payment and shipping provider simulators behind the domain's ports.

They behave like real providers (see the API contract's table): tokens and countries pick the
outcome, latency is configurable, every call is idempotent by key, and each keeps its own ledger,
committed in its own transaction: a provider's charge does not roll back with ours.
"""

from __future__ import annotations

import functools
import time
from collections.abc import Callable, Mapping
from types import SimpleNamespace
from typing import TypeVar

import redis
from sqlalchemy import bindparam, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from app.domain.errors import FraudSuspected, PaymentDeclined, RetryRequested, ShipmentRefused
from app.domain.ids import new_id
from app.domain.ports import PaymentReceipt, ShipmentReceipt
from app.infra.circuit_breaker import CircuitBreaker
from app.infra.database import one_row_autocommit
from app.infra.models import ProviderPayment, ProviderShipment
from app.infra.models.base import utcnow
from app.infra.runtime_settings import ChaosInjector

# Tokens with a scripted outcome; any other token is captured like tok_visa.
DECLINED_TOKENS = {"tok_chargeDeclined"}
FRAUD_TOKENS = {"tok_fraudulent"}
ALWAYS_FAILING_TOKENS = {"tok_processingError"}
FLAKY_TOKENS = {"tok_flaky"}
REFUSED_COUNTRIES = {"XX"}
T = TypeVar("T")
Knobs = dict[str, float | int]  # the chaos knobs (infra/runtime_settings.py)


@functools.cache
def _sqlite_ledger_insert(table):
    """INSERT ... ON CONFLICT (idempotency_key) DO NOTHING RETURNING *, built once per table."""
    return (
        sqlite.insert(table)
        .on_conflict_do_nothing(index_elements=[table.c.idempotency_key])
        .returning(table)
    )


class _Simulator:
    def __init__(
        self,
        session_factory: Callable[[], Session],
        redis_client: redis.Redis,
        latency_ms: Callable[[], float],
        breaker: CircuitBreaker | None = None,
        chaos: ChaosInjector | None = None,
    ):
        self._session_factory = session_factory
        self._redis = redis_client
        # A callable, read on every call: a latency change in the config applies at once.
        self._latency_ms = latency_ms
        self._breaker = breaker
        # Chaos-drill knobs (extra latency, injected transient failures), read on every call.
        self._chaos = chaos
        self._bind = None

    def _engine(self):
        """The ledger's engine, looked up once: a Session built per call only to find it cost
        more CPU than the ledger INSERT."""
        if self._bind is None:
            with self._session_factory() as session:
                self._bind = session.get_bind()
        return self._bind

    def _guarded(self, call: Callable[[Knobs | None], T]) -> T:
        """Run the provider call (given the chaos knobs) through this provider's circuit breaker.

        Both the breaker's state and the knobs are read on every call: in one Redis round trip.
        """
        state, knobs = self._state_and_knobs()
        if self._breaker is None:
            return call(knobs)
        return self._breaker.call(lambda: call(knobs), state=state)

    def _state_and_knobs(self) -> tuple[str | None, Knobs | None]:
        if self._breaker is None or self._chaos is None:
            return None, None  # each reads its own
        pipe = self._redis.pipeline(transaction=False)
        self._breaker.read_state(pipe)
        self._chaos.settings.read_chaos(pipe)
        try:
            open_until, stored = pipe.execute()
        except redis.RedisError:
            # The breaker reads again and fails the call as before; the knobs then stay unread
            # (a healthy provider).
            return None, None
        return self._breaker.state_from(open_until), self._chaos.settings.chaos_from(stored)

    def _wait(self, knobs: Knobs | None) -> None:
        latency = self._latency_ms()
        if latency > 0:
            time.sleep(latency / 1000)
        if self._chaos is not None:
            self._chaos(knobs)

    def _attempt_number(self, idempotency_key: str) -> int:
        """How many times this key was tried (the provider's own memory, kept a day)."""
        name = f"sim:attempts:{idempotency_key}"
        pipe = self._redis.pipeline()
        pipe.incr(name)
        pipe.expire(name, 86400)
        return int(pipe.execute()[0])

    def _record(self, model, **values):
        """Insert the ledger row for a key, or return the row an earlier call already made.

        One INSERT ... ON CONFLICT DO NOTHING RETURNING in its own transaction (this runs on every
        provider call); only a repeated key costs a second statement. On PostgreSQL through the
        driver on the thread's own autocommit connection (infra.database.one_row_autocommit).
        """
        table = model.__table__
        engine = self._engine()
        if engine.dialect.name == "postgresql":
            insert_sql, select_sql = _ledger_sql(engine.dialect, table, tuple(values))
            row = one_row_autocommit(engine, insert_sql, {**values, "created_at": utcnow()})
            if row is None:  # an earlier (or concurrent, now committed) call made the row
                row = one_row_autocommit(engine, select_sql, values)
            return SimpleNamespace(**dict(zip(table.c.keys(), row, strict=True)))
        # SQLite's connections take their write lock at BEGIN (infra/database.py): a transaction.
        with engine.begin() as connection:
            row = connection.execute(_sqlite_ledger_insert(table), values).first()
            if row is None:
                row = connection.execute(
                    select(table).where(table.c.idempotency_key == values["idempotency_key"])
                ).one()
            return row


@functools.cache
def _ledger_sql(dialect, table, columns: tuple[str, ...]) -> tuple[str, str]:
    """The ledger's INSERT ... ON CONFLICT DO NOTHING RETURNING * and its look-up by key, in the
    driver's paramstyle, rendered once per table and column set."""
    names = (*columns, "created_at")
    insert = (
        postgresql.insert(table)
        .values({name: bindparam(name) for name in names})
        .on_conflict_do_nothing(index_elements=[table.c.idempotency_key])
        .returning(*table.c)
    )
    lookup = select(*table.c).where(table.c.idempotency_key == bindparam("idempotency_key"))
    return str(insert.compile(dialect=dialect)), str(lookup.compile(dialect=dialect))


class SimulatedPaymentProvider(_Simulator):
    """Payment simulator: tok_visa captures, tok_chargeDeclined declines, tok_processingError
    always fails transiently, tok_flaky fails transiently on the first try only, tok_fraudulent
    is refused as fraud."""

    def capture(
        self, *, order_id: str, amount: int, currency: str, token: str, idempotency_key: str
    ) -> PaymentReceipt:
        return self._guarded(
            lambda knobs: self._capture(order_id, amount, currency, token, idempotency_key, knobs)
        )

    def _capture(
        self,
        order_id: str,
        amount: int,
        currency: str,
        token: str,
        idempotency_key: str,
        knobs: Knobs | None,
    ) -> PaymentReceipt:
        self._wait(knobs)
        attempt = self._attempt_number(idempotency_key)
        if token in DECLINED_TOKENS:
            raise PaymentDeclined("card declined by the issuer")
        if token in FRAUD_TOKENS:
            raise FraudSuspected("the issuer flagged the card as fraudulent")
        if token in ALWAYS_FAILING_TOKENS or (token in FLAKY_TOKENS and attempt == 1):
            raise RetryRequested("payment provider: processing error, try again")
        row = self._record(
            ProviderPayment,
            id=new_id("pay"),
            idempotency_key=idempotency_key,
            kind="capture",
            order_ref=order_id,
            amount=amount,
            currency=currency,
            status="captured",
        )
        return PaymentReceipt(payment_id=row.id, amount=row.amount, currency=row.currency)

    def refund(
        self, *, payment_id: str, amount: int, currency: str, idempotency_key: str
    ) -> PaymentReceipt:
        return self._guarded(
            lambda knobs: self._refund(payment_id, amount, currency, idempotency_key, knobs)
        )

    def _refund(
        self,
        payment_id: str,
        amount: int,
        currency: str,
        idempotency_key: str,
        knobs: Knobs | None,
    ) -> PaymentReceipt:
        self._wait(knobs)
        with self._session_factory() as session:
            capture = session.scalar(
                select(ProviderPayment).where(ProviderPayment.id == payment_id)
            )
            order_ref = capture.order_ref if capture else ""
        row = self._record(
            ProviderPayment,
            id=new_id("rfd"),
            idempotency_key=idempotency_key,
            kind="refund",
            order_ref=order_ref,
            amount=amount,
            currency=currency,
            status="refunded",
            payment_ref=payment_id,
        )
        return PaymentReceipt(payment_id=row.id, amount=row.amount, currency=row.currency)


class SimulatedShippingProvider(_Simulator):
    """Shipping simulator: country XX is refused, every other country ships."""

    def create_shipment(
        self, *, order_id: str, address: Mapping[str, object], idempotency_key: str
    ) -> ShipmentReceipt:
        return self._guarded(
            lambda knobs: self._create_shipment(order_id, address, idempotency_key, knobs)
        )

    def _create_shipment(
        self,
        order_id: str,
        address: Mapping[str, object],
        idempotency_key: str,
        knobs: Knobs | None,
    ) -> ShipmentReceipt:
        self._wait(knobs)
        country = str(address.get("country", ""))
        if country in REFUSED_COUNTRIES:
            raise ShipmentRefused(f"carrier does not ship to {country}")
        row = self._record(
            ProviderShipment,
            id=new_id("shp"),
            idempotency_key=idempotency_key,
            order_ref=order_id,
            country=country,
            status="created",
        )
        return ShipmentReceipt(shipment_id=row.id)

    def cancel_shipment(self, *, shipment_id: str, idempotency_key: str) -> None:
        self._guarded(lambda knobs: self._cancel_shipment(shipment_id, knobs))

    def _cancel_shipment(self, shipment_id: str, knobs: Knobs | None) -> None:
        self._wait(knobs)
        with self._session_factory() as session:
            shipment = session.scalar(
                select(ProviderShipment).where(ProviderShipment.id == shipment_id)
            )
            if shipment is not None and shipment.status != "cancelled":
                shipment.status = "cancelled"
                session.commit()
