"""POST /auth/token: username and password for a JWT access token."""

from __future__ import annotations

from flask import current_app

from app.api import api
from app.api.parsing import parse_body
from app.api.schemas import TokenRequest
from app.auth import tokens
from app.auth.principals import signing_keys
from app.problems import problem_response
from app.services import accounts


@api.post("/auth/token")
def issue_token():
    body = parse_body(TokenRequest)
    user = accounts.authenticate(body.username, body.password)
    if user is None:
        return problem_response(401, detail="Wrong username or password.")
    config = current_app.config
    token = tokens.issue(
        signing_keys()[0],
        subject=user.id,
        role=user.role,
        merchant_id=user.merchant_id,
        issuer=config["JWT_ISSUER"],
        audience=config["JWT_AUDIENCE"],
        ttl_seconds=config["JWT_TTL_SECONDS"],
    )
    return {"access_token": token, "token_type": "Bearer", "expires_in": config["JWT_TTL_SECONDS"]}
