"""Who is calling: resolved from a session (dashboard) or from request headers (API)."""

from __future__ import annotations

import hashlib
import time
from dataclasses import dataclass

from flask import Request, current_app

from app.auth import tokens


@dataclass(frozen=True)
class ApiKeyPrincipal:
    """A merchant API key acting as its merchant."""

    key_id: str
    merchant_id: str
    key_hash: str = ""  # what the rate limit counts it by (known before the key is looked up)
    role: str = "merchant"
    is_authenticated: bool = True
    is_active: bool = True
    is_anonymous: bool = False

    @property
    def id(self) -> str:
        return self.key_id

    @property
    def username(self) -> str:
        return f"api-key:{self.key_id}"

    def get_id(self) -> str:  # never stored in a session
        return ""


def key_id_for(secret: str) -> str:
    """A stable, non-reversible id for a signing key (the JWT `kid`)."""
    return hashlib.sha256(secret.encode()).hexdigest()[:12]


def signing_keys() -> list[tokens.SigningKey]:
    """The current JWT signing key first, then previous keys still accepted during a rotation."""
    config = current_app.config
    keys = [tokens.SigningKey(key_id_for(config["JWT_SIGNING_KEY"]), config["JWT_SIGNING_KEY"])]
    for previous in config.get("JWT_PREVIOUS_SIGNING_KEYS") or []:
        keys.append(tokens.SigningKey(key_id_for(previous), previous))
    return keys


def api_key_principal(plain: str, key_hash: str | None = None) -> ApiKeyPrincipal | None:
    """The merchant a presented key acts as; cached in Redis briefly (revocation invalidates)."""
    from app.auth.api_keys import hash_key
    from app.infra import cache_keys
    from app.services import accounts

    key_hash = key_hash or hash_key(plain)  # the caller may have hashed it already
    cached = cache_keys.cached_api_key(key_hash)
    now = time.time()
    if cached is not None:
        expires = cached.get("expires_at")
        if expires is not None and expires <= now:
            return None
        return ApiKeyPrincipal(
            key_id=cached["key_id"], merchant_id=cached["merchant_id"], key_hash=key_hash
        )
    key = accounts.find_active_api_key(plain)
    if key is None:
        return None  # unknown or refused keys are never cached: nothing to invalidate later
    principal = ApiKeyPrincipal(key_id=key.id, merchant_id=key.merchant_id, key_hash=key_hash)
    cache_keys.store_api_key(key_hash, {
        "key_id": key.id,
        "merchant_id": key.merchant_id,
        "expires_at": key.expires_at.timestamp() if key.expires_at else None,
    })
    accounts.note_api_key_used(key.id)  # last: its commit expires `key`
    return principal


def principal_from_headers(request: Request, api_key_hash: str | None = None):
    """The user or API key the request's Authorization / X-API-Key header names, else None.

    `api_key_hash`: the X-API-Key's hash, when the caller has computed it already."""

    api_key = request.headers.get("X-API-Key")
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    bearer = token.strip() if scheme.lower() == "bearer" else None
    if api_key:
        principal = api_key_principal(api_key.strip(), api_key_hash)
        # A bad token next to a good key is still a bad credential: 401, as either alone would be.
        if principal is not None and bearer is not None and _bearer_user(bearer) is None:
            return None
        return principal
    return _bearer_user(bearer) if bearer else None


def _bearer_user(token: str):
    """The active user a valid access token names, else None."""
    from app.services import accounts

    config = current_app.config
    try:
        claims = tokens.verify(
            token,
            signing_keys(),
            issuer=config["JWT_ISSUER"],
            audience=config["JWT_AUDIENCE"],
        )
    except tokens.InvalidToken:
        return None
    user = accounts.get_user(claims["sub"])
    if user is None or not user.is_active:
        return None
    return user
