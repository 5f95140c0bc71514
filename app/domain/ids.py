"""Opaque public identifiers: a type prefix and random base62 text (clients never parse them)."""

import secrets
import string

_ALPHABET = string.ascii_letters + string.digits


def new_id(prefix: str, length: int = 20) -> str:
    """A new identifier like `ord_7Hq2...`; 20 base62 characters carry about 119 bits."""
    return f"{prefix}_" + "".join(secrets.choice(_ALPHABET) for _ in range(length))
