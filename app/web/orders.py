"""/orders and /orders/<id>: find orders, read their timeline, retry or cancel them."""

from __future__ import annotations

from flask import current_app, flash, redirect, render_template, request, url_for

from app.auth.actors import request_actor
from app.auth.decorators import require_permission
from app.domain.errors import Conflict, NotFound, ValidationFailed
from app.infra.queue import SAGA_QUEUE
from app.services import dashboard, flags, interventions, orders
from app.web import web
from app.web.ops_forms import ConfirmForm, OrderFilterForm, choices

ORDER_ACTIONS = {
    "retry": ("Retry the saga", interventions.retry_saga, "The saga is queued again.",
              "The saga is queued again and resumes from its last recorded step; a saga that is "
              "running already ignores the duplicate."),
    "cancel": ("Cancel the order", interventions.cancel_order,
               "Cancel requested; the saga compensates and ends cancelled.",
               "The saga stops and compensates what it did (stock released, payment refunded, "
               "shipment cancelled); the order ends cancelled."),
}

# Retry on a failed order (one that was never charged) re-opens it.
REOPEN_DONE = "The order is re-opened (pending); its saga runs again from the first step."
REOPEN_EXPLANATION = (
    "The order failed before any money moved. Re-opening it sets it back to pending and runs "
    "its saga again from the first step (stock reserved, payment captured, shipment created), "
    "with new provider idempotency keys; the merchant sees order.retried, then the new outcome. "
    "Do this once the cause is fixed (restocked, provider back, card updated)."
)

STALE_PAGE_LINK = "That page link is not valid; start again from the newest orders."


def _paused_note() -> str:
    """Said after a retry or cancel while nothing would act on it yet."""
    try:
        paused = SAGA_QUEUE in dashboard.queue_admin().paused()
    except Exception:  # noqa: BLE001 - only a hint; the action itself is done
        return ""
    return " The sagas queue is paused: nothing runs until it is resumed on Queues." if paused \
        else ""


def _filter_form() -> OrderFilterForm:
    form = OrderFilterForm(request.args)
    form.status.choices = choices(dashboard.ORDER_STATUSES)
    form.merchant.choices = choices(dashboard.merchant_names())
    form.failure_reason.choices = choices(dashboard.failure_reasons())
    return form


@web.get("/orders")
@require_permission("dashboard:read")
def order_list():
    form = _filter_form()
    page, error = None, None
    if form.validate():
        filters = dashboard.OrderFilters(
            status=form.status.data or None,
            merchant_id=form.merchant.data or None,
            failure_reason=form.failure_reason.data or None,
            created_from=form.created_from.data,
            created_to=form.created_to.data,
            search=form.q.data,
        )
        try:
            page = dashboard.search_orders(filters, request.args.get("cursor"))
        except ValidationFailed as exc:
            error = "; ".join(
                STALE_PAGE_LINK if e.field == "cursor" else f"{e.field} {e.message}"
                for e in exc.errors
            )
    status = 200 if page is not None else 400
    args = {k: v for k, v in request.args.items() if k != "cursor" and v}
    return render_template(
        "orders/list.html", form=form, page=page, error=error, args=args,
        merchants=dashboard.merchant_names(),
    ), status


@web.get("/orders/<order_id>")
@require_permission("dashboard:read")
def order_detail(order_id: str):
    try:
        order = orders.get_order(order_id)
    except NotFound:
        return render_template("orders/missing.html", order_id=order_id), 404
    held = flags.is_enabled(flags.PAYMENT_HOLD, order.merchant_id)
    return render_template(
        "orders/detail.html", order=order, timeline=dashboard.order_timeline(order.id),
        steps=dashboard.saga_steps(order.id), retry_refusal=interventions.retry_refusal(order),
        payment_held=held, merchant=dashboard.merchant_names().get(order.merchant_id),
    )


@web.route("/orders/<order_id>/<any(retry, cancel):action>", methods=["GET", "POST"])
@require_permission("orders:operate")
def order_action(order_id: str, action: str):
    """A confirmation page with a required reason; the POST does it."""
    try:
        order = orders.get_order(order_id)
    except NotFound:
        return render_template("orders/missing.html", order_id=order_id), 404
    title, perform, done, explanation = ORDER_ACTIONS[action]
    if action == "retry" and order.status == "failed":
        done, explanation = REOPEN_DONE, REOPEN_EXPLANATION
    form = ConfirmForm()
    status = 200
    if form.validate_on_submit():
        try:
            perform(order.id, current_app.extensions["job_queue"], request_actor("web"),
                    form.reason.data)
        except Conflict as exc:
            flash(str(exc), "error")
        else:
            flash(done + _paused_note(), "info")
        return redirect(url_for("web.order_detail", order_id=order.id))
    if request.method == "POST":
        status = 400
    return render_template(
        "confirm.html", form=form, title=f"{title}: {order.id}",
        refusal=interventions.retry_refusal(order) if action == "retry" else None,
        back=url_for("web.order_detail", order_id=order.id), danger=action == "cancel",
        explanation=explanation,
    ), status
