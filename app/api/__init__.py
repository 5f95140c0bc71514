"""The merchant JSON API, /api/v1: parse -> one service call -> serialize. Never renders HTML."""

from flask import Blueprint

api = Blueprint("api", __name__, url_prefix="/api/v1")

# First: its request hook must run before the others read the cache.
from app.api import prefetch  # noqa: E402,F401,I001

# Registers the routes (docs and rate limits included).
from app.api import (  # noqa: E402,F401
    admin,
    chaos,
    docs,
    errors,
    flags,
    limits,
    orders,
    products,
    tokens,
    webhooks,
)
