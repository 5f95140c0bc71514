"""Orders: place, read, list, cancel, and the saga timeline."""

from __future__ import annotations

from functools import wraps

from flask import current_app, g, request

from app.api import api
from app.api.access import acting_merchant, merchant_scope
from app.api.caching import conditional_json, json_text
from app.api.idempotency import answers_lost_responses, idempotent
from app.api.openapi import documented
from app.api.parsing import PAGE_QUERY, parse_body, query_choice, query_int
from app.api.schemas import ORDER_STATUSES, EventList, OrderCreate, OrderOut, OrderPage
from app.api.serializers import event_json, order_json, page_json
from app.auth.actors import request_actor
from app.auth.decorators import require_permission
from app.problems import problem_response
from app.services import flags, order_cache, orders

ORDER_HEADERS = {"ETag": "The order's version; send it back as If-None-Match"}
# The orders kill switch (a feature flag): how long clients are told to wait before retrying.
KILL_SWITCH_RETRY_AFTER_SECONDS = 30


def _queue():
    return current_app.extensions["job_queue"]


def refused_while_kill_switch_on(view):
    """The orders_kill_switch flag: 503 + Retry-After, checked before idempotency stores anything
    (a retry with the same key after the switch is off must place the order)."""

    @wraps(view)
    def wrapped(*args, **kwargs):
        if flags.is_enabled(flags.ORDERS_KILL_SWITCH, acting_merchant()):
            return problem_response(
                503,
                detail="New orders are paused by the operators; retry later.",
                headers={"Retry-After": str(KILL_SWITCH_RETRY_AFTER_SECONDS)},
            )
        return view(*args, **kwargs)

    return wrapped


def _order_as_placed(location: str) -> dict:
    return orders.order_as_placed(location.rsplit("/", 1)[-1], acting_merchant())


@api.post("/orders")
@documented(
    "Place an order (prices come from the catalogue)",
    body=OrderCreate,
    responses={202: OrderOut},
    headers={202: {"Location": "The order's URL"}},
    tag="orders",
)
@require_permission("api:merchant")
@refused_while_kill_switch_on
@idempotent
@answers_lost_responses(_order_as_placed)
def place_order():
    body = parse_body(OrderCreate)
    order = orders.place_order(
        acting_merchant(), body.model_dump(), _queue(), request_id=g.get("request_id"),
        idempotency_claim=g.get("idempotency_claim"),
    )
    return order_json(order), 202, {"Location": f"/api/v1/orders/{order.id}"}


@api.get("/orders/<order_id>")
@documented(
    "Read an order (ETag; If-None-Match answers 304)",
    responses={200: OrderOut, 304: None},
    headers={200: ORDER_HEADERS, 304: ORDER_HEADERS},
    tag="orders",
)
@require_permission("api:merchant")
def get_order(order_id: str):
    scope = merchant_scope()
    version = order_cache.order_version(order_id, scope)
    return conditional_json(
        f"{order_id}.{version}",
        lambda: order_cache.order_document(
            order_id, version, scope, lambda order: json_text(order_json(order))
        )[1],
    )


@api.get("/orders")
@documented(
    "List orders, newest first",
    responses={200: OrderPage},
    query={**PAGE_QUERY, "status": {"type": "string", "enum": list(ORDER_STATUSES)}},
    tag="orders",
)
@require_permission("api:merchant")
def list_orders():
    page = orders.list_orders(
        merchant_scope(),
        status=query_choice("status", ORDER_STATUSES),
        limit=query_int("limit"),
        cursor=request.args.get("cursor"),
    )
    return page_json(page, order_json)


@api.post("/orders/<order_id>/cancel")
@documented(
    "Cancel a pending or processing order (409 once final)",
    responses={202: OrderOut},
    errors=(409,),
    tag="orders",
)
@require_permission("api:merchant")
def cancel_order(order_id: str):
    order = orders.cancel_order(order_id, _queue(), merchant_scope(), actor=request_actor("api"))
    return order_json(order), 202


@api.get("/orders/<order_id>/events")
@documented("The order's saga timeline, oldest first", responses={200: EventList}, tag="orders")
@require_permission("api:merchant")
def order_events(order_id: str):
    return {"data": [event_json(e) for e in orders.order_events(order_id, merchant_scope())]}
