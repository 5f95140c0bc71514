"""Each merchant's products and their stock."""

from __future__ import annotations

import re
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from app.domain.currencies import is_currency
from app.domain.errors import Conflict, FieldError, NotFound, ValidationFailed
from app.domain.ids import new_id
from app.extensions import db
from app.infra.models import Product
from app.services import audit
from app.services.audit import Actor
from app.services.pagination import Page, paginate

_SKU = re.compile(r"^[A-Za-z0-9._-]{1,64}$")
MAX_PRICE = 10**12
MAX_STOCK = 10**9


def _check_fields(values: dict[str, Any]) -> None:
    errors = []
    if "sku" in values and not _SKU.match(values["sku"] or ""):
        errors.append(FieldError("sku", "1-64 characters of letters, digits, '.', '_' or '-'"))
    if "name" in values and not (values["name"] or "").strip():
        errors.append(FieldError("name", "must not be empty"))
    if "price" in values and not 0 <= values["price"] <= MAX_PRICE:
        errors.append(FieldError("price", "must be between 0 and 10^12 minor units"))
    if "currency" in values and not is_currency(values["currency"] or ""):
        errors.append(FieldError("currency", "must be a three-letter ISO 4217 code, like MYR"))
    if "stock" in values and not 0 <= values["stock"] <= MAX_STOCK:
        errors.append(FieldError("stock", "must be between 0 and 10^9"))
    if errors:
        raise ValidationFailed(errors)


def _audited_fields(product: Product, names) -> dict[str, Any]:
    return {name: getattr(product, name) for name in names}


def create_product(
    merchant_id: str,
    *,
    sku: str,
    name: str,
    price: int,
    currency: str,
    stock: int,
    actor: Actor = audit.SYSTEM,
) -> Product:
    """A new product in the merchant's catalogue; the SKU is unique per merchant."""
    _check_fields(dict(sku=sku, name=name, price=price, currency=currency, stock=stock))
    product = Product(
        id=new_id("prd"),
        merchant_id=merchant_id,
        sku=sku,
        name=name.strip(),
        price=price,
        currency=currency,
        stock=stock,
        reserved=0,
    )
    db.session.add(product)
    audit.record(
        actor, "product.create", "product", product.id,
        after={"merchant_id": merchant_id,
               **_audited_fields(product, ("sku", "name", "price", "currency", "stock"))},
    )
    try:
        db.session.commit()
    except IntegrityError:
        db.session.rollback()
        raise Conflict(f"a product with sku {sku!r} exists already") from None
    return product


def get_product(merchant_id: str, sku: str) -> Product:
    product = db.session.scalar(
        select(Product).where(Product.merchant_id == merchant_id, Product.sku == sku)
    )
    if product is None:
        raise NotFound("product")
    return product


def list_products(merchant_id: str, limit: int | None, cursor: str | None) -> Page:
    query = select(Product).where(Product.merchant_id == merchant_id)
    return paginate(query, Product.seq, limit, cursor)


def update_product(
    merchant_id: str, sku: str, changes: dict[str, Any], actor: Actor = audit.SYSTEM
) -> Product:
    """Change name, price or on-hand stock; stock cannot drop below what is reserved."""
    _check_fields(changes)
    product = get_product(merchant_id, sku)
    if "stock" in changes and changes["stock"] < product.reserved:
        raise ValidationFailed(
            [FieldError("stock", f"{product.reserved} units are reserved by open orders")]
        )
    changed = [name for name in ("name", "price", "stock") if name in changes]
    before = _audited_fields(product, changed)
    for name in changed:
        setattr(product, name, changes[name].strip() if name == "name" else changes[name])
    if changed:
        audit.record(actor, "product.update", "product", product.id,
                     before=before, after=_audited_fields(product, changed))
    try:
        db.session.commit()
    except IntegrityError:  # a reservation raced the update past the check constraint
        db.session.rollback()
        raise Conflict("stock changed meanwhile; read the product and try again") from None
    return product
