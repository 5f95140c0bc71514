"""A merchant's catalogue."""

from __future__ import annotations

from flask import request

from app.api import api
from app.api.access import acting_merchant
from app.api.caching import conditional_json
from app.api.idempotency import idempotent
from app.api.openapi import documented
from app.api.parsing import PAGE_QUERY, parse_body, query_int
from app.api.schemas import ProductCreate, ProductOut, ProductPage, ProductUpdate
from app.api.serializers import page_json, product_json
from app.auth.actors import request_actor
from app.auth.decorators import require_permission
from app.services import catalog


@api.post("/products")
@documented(
    "Add a product (409 for a duplicate sku)",
    body=ProductCreate,
    responses={201: ProductOut},
    headers={201: {"Location": "The product's URL, /api/v1/products/{sku}"}},
    tag="products",
)
@require_permission("api:merchant")
@idempotent
def create_product():
    body = parse_body(ProductCreate)
    product = catalog.create_product(
        acting_merchant(), **body.model_dump(), actor=request_actor("api")
    )
    return product_json(product), 201, {"Location": f"/api/v1/products/{product.sku}"}


@api.get("/products")
@documented(
    "List the catalogue, newest first", responses={200: ProductPage}, query=PAGE_QUERY,
    tag="products",
)
@require_permission("api:merchant")
def list_products():
    page = catalog.list_products(acting_merchant(), query_int("limit"), request.args.get("cursor"))
    return page_json(page, product_json)


@api.get("/products/<sku>")
@documented(
    "Read a product (ETag; If-None-Match answers 304)",
    responses={200: ProductOut, 304: None},
    headers={200: {"ETag": "The product's current tag"}, 304: {"ETag": "Unchanged tag"}},
    tag="products",
)
@require_permission("api:merchant")
def get_product(sku: str):
    product = catalog.get_product(acting_merchant(), sku)
    return conditional_json(None, lambda: product_json(product))


@api.patch("/products/<sku>")
@documented(
    "Change name, price or on-hand stock",
    body=ProductUpdate,
    responses={200: ProductOut},
    tag="products",
)
@require_permission("api:merchant")
def update_product(sku: str):
    body = parse_body(ProductUpdate)
    changes = body.model_dump(exclude_unset=True)
    product = catalog.update_product(acting_merchant(), sku, changes, request_actor("api"))
    return product_json(product)
