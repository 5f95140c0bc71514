"""The merchant JSON API, /api/v1: parse -> one service call -> serialize. Never renders HTML."""

from flask import Blueprint

api = Blueprint("api", __name__, url_prefix="/api/v1")

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
