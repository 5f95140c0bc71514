"""The merchant JSON API, /api/v1: parse -> one service call -> serialize. Never renders HTML."""

from flask import Blueprint

api = Blueprint("api", __name__, url_prefix="/api/v1")

from app.api import admin, errors, flags, orders, products, tokens  # noqa: E402,F401  (register routes)
from app.api import webhooks  # noqa: E402,F401  (register routes)
from app.api import docs, limits  # noqa: E402,F401  (docs, rate limits)
