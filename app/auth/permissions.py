"""The permission table and the pure `can()` check every route goes through."""

from __future__ import annotations

from typing import Protocol

ROLES = ("admin", "operator", "viewer", "merchant")

# Dashboard and staff permissions; `api:merchant` is the merchant API surface.
PERMISSIONS: dict[str, frozenset[str]] = {
    "admin": frozenset(
        {
            "dashboard:read",
            "orders:operate",
            "queues:operate",
            "knowledge:write",
            "flags:write",
            "admin:manage",
            "audit:read",
        }
    ),
    "operator": frozenset(
        {"dashboard:read", "orders:operate", "queues:operate", "knowledge:write"}
    ),
    "viewer": frozenset({"dashboard:read"}),
    "merchant": frozenset({"api:merchant"}),
}


class HasRole(Protocol):
    role: str


def can(principal: HasRole | None, permission: str) -> bool:
    """True when the principal's role grants the permission (admin is granted everything)."""
    if principal is None or not getattr(principal, "role", None):
        return False
    if principal.role == "admin":
        return True
    return permission in PERMISSIONS.get(principal.role, frozenset())
