"""Merchant API keys: `opk_<8 visible chars>_<secret>`, stored only as a SHA-256 hash.

A key holds 190 random bits, so a fast hash is enough (no dictionary to guess from) and lookups stay
one indexed query.
"""

from __future__ import annotations

import hashlib
import secrets

KEY_PREFIX = "opk_"


def hash_key(plain: str) -> str:
    return hashlib.sha256(plain.encode()).hexdigest()


def generate() -> tuple[str, str, str]:
    """A new key: (plain key, visible prefix, hash)."""
    visible = secrets.token_hex(4)
    plain = f"{KEY_PREFIX}{visible}_{secrets.token_urlsafe(32)}"
    return plain, f"{KEY_PREFIX}{visible}", hash_key(plain)
