"""The synthetic merchant `flask smoke-test` orders as: a dedicated merchant, product and a
short-lived API key, so a smoke test never touches a real merchant's catalogue or keys."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from sqlalchemy import select

from app.domain.errors import NotFound
from app.extensions import db
from app.infra.models import Merchant
from app.infra.models.base import utcnow
from app.services import accounts, catalog
from app.services.audit import Actor

SMOKE_MERCHANT = "Smoke test (synthetic orders)"
SMOKE_SKU = "SMOKE-1"
SMOKE_STOCK = 100_000
KEY_LIFETIME = dt.timedelta(minutes=15)


@dataclass(frozen=True)
class SmokeCredentials:
    merchant_id: str
    key_id: str
    api_key: str
    sku: str


def prepare_smoke_credentials(actor: Actor) -> SmokeCredentials:
    """The smoke merchant (created once), its product topped up, and a key valid 15 minutes."""
    merchant = db.session.scalar(select(Merchant).where(Merchant.name == SMOKE_MERCHANT))
    if merchant is None:
        merchant = accounts.create_merchant(SMOKE_MERCHANT, actor)
    try:
        product = catalog.get_product(merchant.id, SMOKE_SKU)
        if product.stock - product.reserved < SMOKE_STOCK // 2:
            topped_up = {"stock": product.reserved + SMOKE_STOCK}
            catalog.update_product(merchant.id, SMOKE_SKU, topped_up, actor)
    except NotFound:
        catalog.create_product(merchant.id, sku=SMOKE_SKU, name="Synthetic smoke-test item",
                               price=100, currency="MYR", stock=SMOKE_STOCK, actor=actor)
    key, plain = accounts.create_api_key(merchant.id, "smoke-test", actor)
    # Even if the run dies before revoking it, the key stops working on its own.
    key.expires_at = utcnow() + KEY_LIFETIME
    credentials = SmokeCredentials(merchant.id, key.id, plain, SMOKE_SKU)
    db.session.commit()
    # No transaction (on SQLite: no write lock) may stay open while the deployment is tested.
    db.session.close()
    return credentials


def retire_smoke_key(key_id: str, actor: Actor) -> None:
    """Revoke the run's key once the run is over."""
    accounts.revoke_api_key(key_id, actor)
