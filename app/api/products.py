"""A merchant's catalogue."""

from __future__ import annotations

from flask import request

from app.api import api
from app.api.access import acting_merchant
from app.api.parsing import parse_body, query_int
from app.api.schemas import ProductCreate, ProductUpdate
from app.api.serializers import page_json, product_json
from app.auth.decorators import require_permission
from app.services import catalog


@api.post("/products")
@require_permission("api:merchant")
def create_product():
    body = parse_body(ProductCreate)
    product = catalog.create_product(acting_merchant(), **body.model_dump())
    return product_json(product), 201


@api.get("/products")
@require_permission("api:merchant")
def list_products():
    page = catalog.list_products(acting_merchant(), query_int("limit"), request.args.get("cursor"))
    return page_json(page, product_json)


@api.get("/products/<sku>")
@require_permission("api:merchant")
def get_product(sku: str):
    return product_json(catalog.get_product(acting_merchant(), sku))


@api.patch("/products/<sku>")
@require_permission("api:merchant")
def update_product(sku: str):
    body = parse_body(ProductUpdate)
    changes = body.model_dump(exclude_unset=True)
    return product_json(catalog.update_product(acting_merchant(), sku, changes))
