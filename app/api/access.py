"""Who may touch which merchant's data through the API."""

from __future__ import annotations

from flask import abort
from flask_login import current_user


def merchant_scope() -> str | None:
    """The merchant whose data the caller sees: its own for merchants, every merchant for admins."""
    if current_user.role == "merchant":
        return current_user.merchant_id
    if current_user.role == "admin":
        return None
    abort(403)


def acting_merchant() -> str:
    """The merchant a write acts for: only merchant users and API keys write merchant data."""
    if current_user.role != "merchant" or not current_user.merchant_id:
        abort(403, description="Only a merchant user or API key can do this.")
    return current_user.merchant_id
