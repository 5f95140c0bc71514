"""The operations dashboard: forms -> one service call -> render or redirect. Never returns JSON."""

from flask import Blueprint

web = Blueprint("web", __name__)

from app.web import auth_views, orders, shift  # noqa: E402,F401  (register routes)
from app.web import admin, audit, filters, flags, queues  # noqa: E402,F401
