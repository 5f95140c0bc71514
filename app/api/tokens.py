"""POST /auth/token: username and password for a JWT access token."""

from __future__ import annotations

from flask import current_app, g, request

from app.api import api
from app.api.openapi import documented
from app.api.parsing import parse_body
from app.api.schemas import TokenOut, TokenRequest
from app.auth import tokens
from app.auth.principals import signing_keys
from app.auth.rate_limits import count_login_attempt, take_back_username_attempt
from app.problems import problem_response
from app.services import accounts


def _attempted_username() -> str | None:
    data = request.get_json(silent=True)
    name = data.get("username") if isinstance(data, dict) else None
    return name if isinstance(name, str) else None


@api.post("/auth/token")
@documented(
    "Exchange a username and password for an access token (rate limited per IP and username)",
    body=TokenRequest,
    responses={200: TokenOut},
    tag="auth",
    public=True,
)
def issue_token():
    attempt = count_login_attempt(_attempted_username())
    api_state = g.get("rate_state")
    if attempt is not None and (api_state is None or attempt.remaining <= api_state.remaining):
        g.rate_state = attempt  # the headers describe the tighter limit: RATELIMIT_AUTH, usually
    if attempt is not None and not attempt.allowed:
        return problem_response(
            429, detail="Too many sign-in attempts; wait and try again.", headers=attempt.headers()
        )
    body = parse_body(TokenRequest)
    user = accounts.authenticate(body.username, body.password)
    if user is None:
        return problem_response(401, detail="Wrong username or password.")
    take_back_username_attempt(body.username)
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
