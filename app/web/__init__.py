"""The operations dashboard: forms -> one service call -> render or redirect. Never returns JSON."""

from flask import Blueprint

web = Blueprint("web", __name__)

from app.web import (  # noqa: E402,F401  (register routes)
    admin,
    audit,
    auth_views,
    chaos,
    filters,
    flags,
    kb,
    orders,
    postmortems,
    queues,
    rendering,
    runbooks,
    security_txt,
    shift,
    slo,
)
