"""flask seed-demo: idempotent demo data (merchants, products, users, orders in every state)."""

from __future__ import annotations

import dataclasses

import click
from flask import current_app
from flask.cli import with_appcontext
from sqlalchemy import select

from app.auth.actors import cli_actor
from app.cli.knowledge_seed import seed_knowledge
from app.domain.saga import CAPTURE_PAYMENT
from app.extensions import db
from app.infra.models import Merchant, User
from app.services import accounts, catalog, flags, orders, saga_store
from app.services.audit import Actor
from app.services.saga import SagaContext, drive_claimed, run_saga

DEMO_MERCHANTS = ("Demo Coffee Roasters", "Demo Bike Parts")
DEMO_STAFF = (("admin", "admin"), ("operator", "operator"), ("viewer", "viewer"))
DEMO_PRODUCTS = {
    "Demo Coffee Roasters": [
        ("BEAN-ETH", "Ethiopia Yirgacheffe 250g", 4500, 500),
        ("BEAN-COL", "Colombia Huila 250g", 3900, 500),
        ("MUG-01", "Enamel mug", 2500, 200),
    ],
    "Demo Bike Parts": [
        ("CHAIN-11", "11-speed chain", 8900, 300),
        ("TUBE-700", "Inner tube 700x25", 1500, 1000),
    ],
}
# (payment token, country, cancel first, more than in stock): one order for every state a saga
# can end in (completed; failed for each failure reason; cancelled).
DEMO_ORDERS = (
    ("tok_visa", "MY", False, False),
    ("tok_visa", "SG", False, False),
    ("tok_flaky", "MY", False, False),
    ("tok_chargeDeclined", "MY", False, False),  # payment_declined
    ("tok_processingError", "MY", False, False),  # payment_error
    ("tok_visa", "XX", False, False),  # shipment_failed
    ("tok_visa", "MY", True, False),  # cancelled
    ("tok_fraudulent", "MY", False, False),  # fraud_suspected
    ("tok_visa", "MY", False, True),  # out_of_stock
)


class _NoQueue:
    """Demo orders are driven right here, so nothing is queued."""

    def enqueue_saga(self, order_id, *, request_id=None):
        return None


class _PausedBeforePayment(Exception):
    """Stops a demo saga where a worker would be half-way: stock reserved, payment next."""


def _leave_processing(order_id: str, ctx: SagaContext) -> None:
    """Drive the saga up to its payment and stop there, as a worker stopped mid-saga would: the
    order stays processing with its stock reserved and no lease, so the scheduler's stuck-saga
    recovery finishes it once the workers run."""
    saga = saga_store.claim(order_id, ctx.worker, ctx.lease_seconds, hold=True)

    def stop_before_payment(_order_id: str, point: str) -> None:
        if point == f"before:{CAPTURE_PAYMENT}":
            saga_store.commit(saga)  # the reservation and its step, durable
            raise _PausedBeforePayment

    try:
        drive_claimed(saga, dataclasses.replace(ctx, on_boundary=stop_before_payment))
    except _PausedBeforePayment:
        pass  # drive_claimed gave the lease up on its way out


def _order_payload(sku: str, token: str, country: str, n: int, quantity: int = 0) -> dict:
    return {
        "items": [{"sku": sku, "quantity": quantity or 1 + n % 3}],
        "customer": {"email": f"customer{n}@example.com", "name": f"Customer {n}"},
        "shipping_address": {
            "line1": f"{n} Jalan Ampang",
            "city": "Kuala Lumpur",
            "postal_code": "50450",
            "country": country,
        },
        "payment": {"token": token},
    }


def seed_demo(actor: Actor | None = None) -> bool:
    """Create the demo data unless it exists; True when something was created. The audit log
    names `actor` (default: the operating-system user, as every `flask` command does)."""
    actor = actor or cli_actor()
    # The kill switches the system honours exist (off) even where the demo data already does.
    flags.ensure_builtin_flags(actor)
    if db.session.scalar(select(Merchant).where(Merchant.name == DEMO_MERCHANTS[0])):
        return False
    password = current_app.config["DEMO_PASSWORD"]
    for username, role in DEMO_STAFF:
        if not db.session.scalar(select(User).where(User.username == username)):
            accounts.create_user(username, password, role, actor=actor)
    ctx = SagaContext(
        payments=current_app.extensions["payment_provider"],
        shipping=current_app.extensions["shipping_provider"],
        worker="seed-demo",
        sleep=lambda _s: None,
    )
    for m_index, name in enumerate(DEMO_MERCHANTS):
        merchant = accounts.create_merchant(name, actor)
        accounts.create_user(
            f"merchant{m_index + 1}", password, "merchant", merchant.id, actor=actor
        )
        for sku, title, price, stock in DEMO_PRODUCTS[name]:
            catalog.create_product(
                merchant.id, sku=sku, name=title, price=price, currency="MYR", stock=stock,
                actor=actor,
            )
        stock_of = {p[0]: p[3] for p in DEMO_PRODUCTS[name]}
        skus = list(stock_of)
        for n, (token, country, cancel, too_many) in enumerate(DEMO_ORDERS):
            sku = skus[n % len(skus)]
            payload = _order_payload(sku, token, country, n, stock_of[sku] + 1 if too_many else 0)
            order = orders.place_order(merchant.id, payload, _NoQueue())
            if cancel:
                orders.cancel_order(order.id, _NoQueue(), merchant.id, reason="demo", actor=actor)
            run_saga(order.id, ctx)
        # One order half-way (processing: stock reserved, payment next) and one not started
        # (pending): the workers and the scheduler's recovery finish them once they run.
        order = orders.place_order(
            merchant.id, _order_payload(skus[0], "tok_visa", "MY", 98), _NoQueue()
        )
        _leave_processing(order.id, ctx)
        orders.place_order(merchant.id, _order_payload(skus[0], "tok_visa", "MY", 99), _NoQueue())
    return True


@click.command("seed-demo")
@with_appcontext
def seed_demo_command():
    """Create demo merchants, products, users and orders (idempotent)."""
    actor = cli_actor()
    created = seed_demo(actor)
    password = current_app.config["DEMO_PASSWORD"]
    click.echo("demo data created" if created else "demo data already present; nothing changed")
    knowledge = seed_knowledge(actor)
    click.echo(
        "knowledge: {runbooks} runbooks, {articles} articles, {postmortems} postmortems "
        "added".format(**knowledge)
    )
    click.echo(
        f"demo logins (password {password!r}): admin, operator, viewer; API: merchant1, merchant2"
    )
