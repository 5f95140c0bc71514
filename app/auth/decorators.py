"""The two thin decorators every protected view uses."""

from __future__ import annotations

from functools import wraps

from flask import abort
from flask_login import current_user

from app.auth.permissions import can
from app.extensions import login_manager


def require_permission(permission: str):
    """Refuse unauthenticated callers (401) and callers whose role lacks the permission (403)."""

    def decorator(view):
        @wraps(view)
        def wrapped(*args, **kwargs):
            user = current_user._get_current_object()  # one proxy lookup, not one per use
            if not user.is_authenticated:
                # The dashboard sends people to /login?next=...; API callers get JSON 401.
                return login_manager.unauthorized()
            if not can(user, permission):
                abort(403)
            return view(*args, **kwargs)

        wrapped.required_permission = permission
        return wrapped

    return decorator


def require_role(*roles: str):
    """Refuse callers whose role is not one of `roles` (admin always passes)."""

    def decorator(view):
        @wraps(view)
        def wrapped(*args, **kwargs):
            if not current_user.is_authenticated:
                abort(401)
            if current_user.role not in roles and current_user.role != "admin":
                abort(403)
            return view(*args, **kwargs)

        wrapped.required_roles = roles
        return wrapped

    return decorator
