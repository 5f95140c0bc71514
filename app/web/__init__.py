"""The operations dashboard: forms -> one service call -> render or redirect. Never returns JSON."""

from flask import Blueprint

from app.extensions import csrf

web = Blueprint("web", __name__)

# The dashboard's forms check CSRF themselves (app/web/forms.py explains why): a stale token is a
# form error on the page the user filled in, not a bare 400 from a global before_request.
csrf.exempt(web)

from app.web import (  # noqa: E402,F401  (register routes)
    admin,
    audit,
    auth_views,
    chaos,
    filters,
    flags,
    guards,
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
