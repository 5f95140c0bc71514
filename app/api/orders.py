"""Orders: place, read, list, cancel, and the saga timeline."""

from __future__ import annotations

from flask import current_app, g, request

from app.api import api
from app.api.access import acting_merchant, merchant_scope
from app.api.parsing import parse_body, query_int
from app.api.schemas import OrderCreate
from app.api.serializers import event_json, order_json, page_json
from app.auth.decorators import require_permission
from app.services import orders


def _queue():
    return current_app.extensions["job_queue"]


@api.post("/orders")
@require_permission("api:merchant")
def place_order():
    body = parse_body(OrderCreate)
    order = orders.place_order(
        acting_merchant(), body.model_dump(), _queue(), request_id=g.get("request_id")
    )
    return order_json(order), 202, {"Location": f"/api/v1/orders/{order.id}"}


@api.get("/orders/<order_id>")
@require_permission("api:merchant")
def get_order(order_id: str):
    return order_json(orders.get_order(order_id, merchant_scope()))


@api.get("/orders")
@require_permission("api:merchant")
def list_orders():
    page = orders.list_orders(
        merchant_scope(),
        status=request.args.get("status"),
        limit=query_int("limit"),
        cursor=request.args.get("cursor"),
    )
    return page_json(page, order_json)


@api.post("/orders/<order_id>/cancel")
@require_permission("api:merchant")
def cancel_order(order_id: str):
    order = orders.cancel_order(order_id, _queue(), merchant_scope())
    return order_json(order), 202


@api.get("/orders/<order_id>/events")
@require_permission("api:merchant")
def order_events(order_id: str):
    return {"data": [event_json(e) for e in orders.order_events(order_id, merchant_scope())]}
