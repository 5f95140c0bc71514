"""/audit: every state-changing action, filterable (admins only)."""

from __future__ import annotations

from flask import render_template, request

from app.auth.decorators import require_permission
from app.domain.errors import ValidationFailed
from app.services import audit
from app.web import web
from app.web.ops_forms import AuditFilterForm


@web.get("/audit")
@require_permission("audit:read")
def audit_log():
    form = AuditFilterForm(request.args)
    page, status = None, 400
    if form.validate():
        try:
            page = audit.list_entries(
                actor=form.actor.data or None, action=form.action.data or None,
                target_type=form.target_type.data or None,
                target_id=form.target_id.data or None, source=form.source.data or None,
                first_day=form.first_day.data, last_day=form.last_day.data,
                limit=50, cursor=request.args.get("cursor"),
            )
            status = 200
        except ValidationFailed:
            form.actor.errors = list(form.actor.errors) + ["That page link is not valid."]
    args = {k: v for k, v in request.args.items() if k != "cursor" and v}
    return render_template("audit/list.html", form=form, page=page, args=args), status
