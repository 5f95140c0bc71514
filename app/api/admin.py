"""Admin endpoints: merchants, their API keys, and users."""

from __future__ import annotations

from flask import current_app

from app.api import api
from app.api.idempotency import holds_secret, idempotent
from app.api.openapi import documented
from app.api.parsing import parse_body
from app.api.schemas import (
    ApiKeyCreate,
    ApiKeyOut,
    ApiKeyRotate,
    ApiKeyRotatedOut,
    MerchantCreate,
    MerchantOut,
    UserCreate,
    UserOut,
)
from app.api.serializers import api_key_json, merchant_json, no_content, rfc3339, user_json
from app.auth.actors import request_actor
from app.auth.decorators import require_permission
from app.services import accounts


@api.post("/merchants")
@documented("Create a merchant", body=MerchantCreate, responses={201: MerchantOut}, tag="admin")
@require_permission("admin:manage")
@idempotent
def create_merchant():
    body = parse_body(MerchantCreate)
    return merchant_json(accounts.create_merchant(body.name, request_actor("api"))), 201


@api.post("/merchants/<merchant_id>/api-keys")
@documented(
    "Create an API key for a merchant; the key is shown only in this response",
    body=ApiKeyCreate,
    responses={201: ApiKeyOut},
    tag="admin",
)
@require_permission("admin:manage")
@idempotent
@holds_secret
def create_api_key(merchant_id: str):
    body = parse_body(ApiKeyCreate)
    key, plain = accounts.create_api_key(merchant_id, body.name, request_actor("api"))
    return api_key_json(key, plain), 201


@api.delete("/api-keys/<key_id>")
@documented("Revoke an API key: refused from then on", responses={204: None}, tag="admin")
@require_permission("admin:manage")
def revoke_api_key(key_id: str):
    accounts.revoke_api_key(key_id, request_actor("api"))
    return no_content()


@api.post("/api-keys/<key_id>/rotate")
@documented(
    "Rotate an API key: a new key now, the old one keeps working for the overlap window",
    body=ApiKeyRotate,
    responses={201: ApiKeyRotatedOut},
    tag="admin",
)
@require_permission("admin:manage")
@idempotent
@holds_secret
def rotate_api_key(key_id: str):
    body = parse_body(ApiKeyRotate)
    overlap = body.overlap_seconds
    if overlap is None:
        overlap = current_app.config["API_KEY_ROTATION_OVERLAP_SECONDS"]
    new, plain, old = accounts.rotate_api_key(key_id, overlap, request_actor("api"))
    return {
        **api_key_json(new, plain),
        "replaces": old.id,
        "previous_key_expires_at": rfc3339(old.expires_at),
    }, 201


@api.post("/users")
@documented(
    "Create a user (merchant_id required for role merchant)",
    body=UserCreate,
    responses={201: UserOut},
    tag="admin",
)
@require_permission("admin:manage")
@idempotent
def create_user():
    body = parse_body(UserCreate)
    user = accounts.create_user(
        body.username, body.password, body.role, body.merchant_id, request_actor("api")
    )
    return user_json(user), 201
