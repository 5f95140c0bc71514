from types import SimpleNamespace

import pytest

from app.auth.permissions import can


@pytest.mark.parametrize(
    ("role", "permission", "allowed"),
    [
        ("admin", "flags:write", True),
        ("admin", "anything:at-all", True),
        ("operator", "orders:operate", True),
        ("operator", "flags:write", False),
        ("operator", "admin:manage", False),
        ("viewer", "dashboard:read", True),
        ("viewer", "orders:operate", False),
        ("merchant", "api:merchant", True),
        ("merchant", "dashboard:read", False),
        ("", "dashboard:read", False),
    ],
)
def test_permission_table(role, permission, allowed):
    assert can(SimpleNamespace(role=role), permission) is allowed


def test_nobody_is_allowed_nothing():
    assert can(None, "dashboard:read") is False
