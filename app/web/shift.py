"""The shift view: the first page staff see."""

from __future__ import annotations

from flask import render_template

from app.auth.decorators import require_permission
from app.services import dashboard
from app.web import web


@web.get("/")
@require_permission("dashboard:read")
def index():
    return render_template("index.html", summary=dashboard.shift_summary())
