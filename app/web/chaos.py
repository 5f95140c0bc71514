"""/admin/chaos: admins change the simulated providers' failure rate and latency (audited)."""

from __future__ import annotations

from flask import flash, redirect, render_template, url_for
from wtforms import DecimalField, IntegerField, StringField, SubmitField
from wtforms.validators import DataRequired, InputRequired, Length, NumberRange

from app.auth.actors import request_actor
from app.auth.decorators import require_permission
from app.domain.chaos import MAX_LATENCY_MS
from app.domain.errors import ValidationFailed
from app.services import chaos
from app.web import web
from app.web.forms import DashboardForm


def _rate(label: str) -> DecimalField:
    return DecimalField(label, places=2, validators=[
        InputRequired(), NumberRange(0, 1, message="between 0 and 1")])


def _latency(label: str) -> IntegerField:
    return IntegerField(label, validators=[
        InputRequired(), NumberRange(0, MAX_LATENCY_MS, message=f"0 to {MAX_LATENCY_MS} ms")])


class ChaosForm(DashboardForm):
    payment_failure_rate = _rate("Payment failure rate")
    payment_latency_ms = _latency("Payment latency (ms)")
    shipping_failure_rate = _rate("Shipping failure rate")
    shipping_latency_ms = _latency("Shipping latency (ms)")
    reason = StringField("Reason", validators=[DataRequired(), Length(max=500)])
    apply = SubmitField("Apply")
    reset = SubmitField("End the drill (all 0)")


KNOB_FIELDS = ("payment_failure_rate", "payment_latency_ms", "shipping_failure_rate",
               "shipping_latency_ms")


@web.get("/admin/chaos")
@require_permission("admin:manage")
def chaos_page():
    form = ChaosForm(data=chaos.chaos_settings())
    return render_template("chaos/index.html", form=form, knobs=chaos.chaos_settings())


@web.post("/admin/chaos")
@require_permission("admin:manage")
def chaos_update():
    form = ChaosForm()
    if form.reset.data and form.reason.validate(form) and form.csrf_token.validate(form):
        chaos.reset_chaos(request_actor("web"), form.reason.data)
        flash("Chaos drill ended: providers are healthy again.", "info")
        return redirect(url_for("web.chaos_page"))
    if form.validate_on_submit():
        changes = {name: float(getattr(form, name).data) for name in KNOB_FIELDS}
        try:
            chaos.update_chaos(changes, request_actor("web"), form.reason.data)
        except ValidationFailed as exc:
            flash("; ".join(f"{e.field}: {e.message}" for e in exc.errors), "error")
        else:
            flash("Chaos settings applied; every worker uses them from its next call.", "info")
            return redirect(url_for("web.chaos_page"))
    else:
        flash("Nothing changed: " + ("; ".join(form.form_errors) or "check the fields below."),
              "error")
    return render_template("chaos/index.html", form=form, knobs=chaos.chaos_settings()), 400
