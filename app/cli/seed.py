"""flask seed-demo: idempotent demo data (merchants, products, users, orders in every state)."""

from __future__ import annotations

import click
from flask import current_app
from flask.cli import with_appcontext
from sqlalchemy import select

from app.auth.actors import cli_actor
from app.cli.knowledge_seed import seed_knowledge
from app.extensions import db
from app.infra.models import Merchant, User
from app.services import accounts, catalog, flags, orders
from app.services.saga import SagaContext, run_saga

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
# (payment token, country, cancel first): one order for every state a saga can end in.
DEMO_ORDERS = (
    ("tok_visa", "MY", False),
    ("tok_visa", "SG", False),
    ("tok_flaky", "MY", False),
    ("tok_chargeDeclined", "MY", False),
    ("tok_processingError", "MY", False),
    ("tok_visa", "XX", False),
    ("tok_visa", "MY", True),
)


class _NoQueue:
    """Demo orders are driven right here, so nothing is queued."""

    def enqueue_saga(self, order_id, *, request_id=None):
        return None


def _order_payload(sku: str, token: str, country: str, n: int) -> dict:
    return {
        "items": [{"sku": sku, "quantity": 1 + n % 3}],
        "customer": {"email": f"customer{n}@example.com", "name": f"Customer {n}"},
        "shipping_address": {
            "line1": f"{n} Jalan Ampang",
            "city": "Kuala Lumpur",
            "postal_code": "50450",
            "country": country,
        },
        "payment": {"token": token},
    }


def seed_demo() -> bool:
    """Create the demo data unless it exists; True when something was created."""
    # The kill switches the system honours exist (off) even where the demo data already does.
    flags.ensure_builtin_flags(cli_actor())
    if db.session.scalar(select(Merchant).where(Merchant.name == DEMO_MERCHANTS[0])):
        return False
    password = current_app.config["DEMO_PASSWORD"]
    for username, role in DEMO_STAFF:
        if not db.session.scalar(select(User).where(User.username == username)):
            accounts.create_user(username, password, role)
    ctx = SagaContext(
        payments=current_app.extensions["payment_provider"],
        shipping=current_app.extensions["shipping_provider"],
        worker="seed-demo",
        sleep=lambda _s: None,
    )
    for m_index, name in enumerate(DEMO_MERCHANTS):
        merchant = accounts.create_merchant(name)
        accounts.create_user(f"merchant{m_index + 1}", password, "merchant", merchant.id)
        for sku, title, price, stock in DEMO_PRODUCTS[name]:
            catalog.create_product(
                merchant.id, sku=sku, name=title, price=price, currency="MYR", stock=stock
            )
        skus = [p[0] for p in DEMO_PRODUCTS[name]]
        for n, (token, country, cancel) in enumerate(DEMO_ORDERS):
            order = orders.place_order(
                merchant.id, _order_payload(skus[n % len(skus)], token, country, n), _NoQueue()
            )
            if cancel:
                orders.cancel_order(order.id, _NoQueue(), merchant.id, reason="demo")
            run_saga(order.id, ctx)
        # One order left pending: the workers pick it up once they run.
        orders.place_order(merchant.id, _order_payload(skus[0], "tok_visa", "MY", 99), _NoQueue())
    return True


@click.command("seed-demo")
@with_appcontext
def seed_demo_command():
    """Create demo merchants, products, users and orders (idempotent)."""
    created = seed_demo()
    password = current_app.config["DEMO_PASSWORD"]
    click.echo("demo data created" if created else "demo data already present; nothing changed")
    knowledge = seed_knowledge(cli_actor())
    click.echo(
        "knowledge: {runbooks} runbooks, {articles} articles, {postmortems} postmortems "
        "added".format(**knowledge)
    )
    click.echo(
        f"demo logins (password {password!r}): admin, operator, viewer; API: merchant1, merchant2"
    )
