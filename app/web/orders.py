"""/orders: the order list staff filter and page through."""

from __future__ import annotations

from flask import render_template, request

from app.auth.decorators import require_permission
from app.domain.errors import ValidationFailed
from app.services import orders
from app.web import web


@web.get("/orders")
@require_permission("dashboard:read")
def order_list():
    status = request.args.get("status") or None
    try:
        page = orders.list_orders(None, status=status, limit=50, cursor=request.args.get("cursor"))
    except ValidationFailed:
        page = orders.list_orders(None, status=status, limit=50, cursor=None)
    return render_template("orders/list.html", page=page, status=status)
