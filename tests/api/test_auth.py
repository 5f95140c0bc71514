"""Authentication: JWT issue and verification, API keys, passwords."""

from __future__ import annotations

import base64
import json
import time

import pytest

from app.auth import tokens
from app.auth.principals import key_id_for
from tests.conftest import PASSWORD, TEST_SECRETS
from tests.helpers import admin_headers, bearer, create_user, merchant_with_key, token_for

ISSUER, AUDIENCE = "orderprocessing", "orderprocessing-api"
SECRET = TEST_SECRETS["JWT_SIGNING_KEY"]


def _b64(data: dict) -> str:
    return base64.urlsafe_b64encode(json.dumps(data).encode()).decode().rstrip("=")


def _claims(user_id: str, **changes) -> dict:
    now = int(time.time())
    claims = {
        "sub": user_id, "role": "admin", "iss": ISSUER, "aud": AUDIENCE,
        "iat": now, "nbf": now, "exp": now + 600, "jti": "j" * 16,
    }
    for name, value in changes.items():
        if value is None:
            claims.pop(name)
        else:
            claims[name] = value
    return claims


def _signed(claims: dict, secret: str = SECRET) -> str:
    from authlib.jose import JsonWebToken

    header = {"alg": "HS256", "typ": "JWT", "kid": key_id_for(secret)}
    return JsonWebToken(["HS256"]).encode(header, claims, secret).decode()


def _alg_none(claims: dict) -> str:
    return f"{_b64({'alg': 'none', 'typ': 'JWT'})}.{_b64(claims)}."


def _tampered(claims: dict) -> str:
    head, _, sig = _signed(claims).split(".")
    return f"{head}.{_b64({**claims, 'role': 'admin', 'sub': 'someone-else'})}.{sig}"


NEGATIVES = {
    "alg_none": lambda uid: _alg_none(_claims(uid)),
    "tampered_payload": lambda uid: _tampered(_claims(uid)),
    "wrong_key": lambda uid: _signed(_claims(uid), secret="another-key-" + "k" * 40),
    "expired": lambda uid: _signed(_claims(uid, exp=int(time.time()) - 5)),
    "nbf_in_future": lambda uid: _signed(_claims(uid, nbf=int(time.time()) + 300)),
    "missing_exp": lambda uid: _signed(_claims(uid, exp=None)),
    "wrong_iss": lambda uid: _signed(_claims(uid, iss="someone-else")),
    "wrong_aud": lambda uid: _signed(_claims(uid, aud="another-api")),
    "garbage": lambda uid: "not.a.jwt",
}


@pytest.mark.parametrize("case", sorted(NEGATIVES))
def test_bad_tokens_are_refused_with_401_and_bearer_challenge(sqlite_app, sqlite_client, case):
    user_id = create_user(sqlite_app, "root-user", "admin")
    # The same claims, correctly signed, are accepted: each negative differs in one thing only.
    good = sqlite_client.post("/api/v1/merchants", json={"name": "M"},
                              headers=bearer(_signed(_claims(user_id))))
    assert good.status_code == 201

    response = sqlite_client.post(
        "/api/v1/merchants", json={"name": "M"}, headers=bearer(NEGATIVES[case](user_id))
    )
    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"] == "Bearer"
    assert response.mimetype == "application/problem+json"
    assert response.get_json()["request_id"] == response.headers["X-Request-ID"]


def test_missing_credentials_get_401_with_bearer_challenge(sqlite_client):
    response = sqlite_client.get("/api/v1/orders")
    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"].startswith("Bearer")


def test_token_carries_the_contract_claims_and_verifies(sqlite_app, sqlite_client):
    admin = admin_headers(sqlite_app, sqlite_client)
    merchant_id, _ = merchant_with_key(sqlite_client, admin)
    create_user(sqlite_app, "shop-user", "merchant", merchant_id)
    response = sqlite_client.post(
        "/api/v1/auth/token", json={"username": "shop-user", "password": PASSWORD}
    )
    body = response.get_json()
    assert response.status_code == 200
    assert body["token_type"] == "Bearer" and body["expires_in"] == 3600
    claims = tokens.verify(
        body["access_token"], [tokens.SigningKey(key_id_for(SECRET), SECRET)],
        issuer=ISSUER, audience=AUDIENCE,
    )
    assert claims["role"] == "merchant" and claims["merchant_id"] == merchant_id
    assert {"sub", "iat", "exp", "nbf", "jti", "iss", "aud"} <= set(claims)
    header = json.loads(base64.urlsafe_b64decode(body["access_token"].split(".")[0] + "=="))
    assert header["alg"] == "HS256" and header["kid"] == key_id_for(SECRET)


def test_wrong_username_and_wrong_password_get_the_same_401(sqlite_app, sqlite_client):
    create_user(sqlite_app, "real-user", "viewer")
    wrong_password = sqlite_client.post(
        "/api/v1/auth/token", json={"username": "real-user", "password": "nope-nope-nope"}
    )
    wrong_user = sqlite_client.post(
        "/api/v1/auth/token", json={"username": "ghost-user", "password": "nope-nope-nope"}
    )
    assert wrong_password.status_code == wrong_user.status_code == 401
    strip = lambda r: {k: v for k, v in r.get_json().items() if k != "request_id"}  # noqa: E731
    assert strip(wrong_password) == strip(wrong_user)


def test_api_key_is_shown_once_stored_hashed_and_refused_after_revocation(
    sqlite_app, sqlite_client
):
    from app.extensions import db
    from app.infra.models import ApiKey

    admin = admin_headers(sqlite_app, sqlite_client)
    merchant = sqlite_client.post("/api/v1/merchants", json={"name": "K"}, headers=admin)
    created = sqlite_client.post(
        f"/api/v1/merchants/{merchant.get_json()['id']}/api-keys", json={"name": "ci"},
        headers=admin,
    ).get_json()
    assert created["key"].startswith(created["prefix"] + "_")
    with sqlite_app.app_context():
        stored = db.session.get(ApiKey, 1) or db.session.query(ApiKey).one()
        assert created["key"] not in (stored.key_hash, stored.prefix)
    headers = {"X-API-Key": created["key"]}
    assert sqlite_client.get("/api/v1/orders", headers=headers).status_code == 200

    revoked = sqlite_client.delete(f"/api/v1/api-keys/{created['id']}", headers=admin)
    assert revoked.status_code == 204 and revoked.data == b""
    assert "Content-Type" not in revoked.headers  # no body, so nothing to label
    refused = sqlite_client.get("/api/v1/orders", headers=headers)
    assert refused.status_code == 401
    assert refused.headers["WWW-Authenticate"].startswith("Bearer")


def test_a_bad_credential_beside_a_good_one_is_still_refused(sqlite_app, sqlite_client):
    admin = admin_headers(sqlite_app, sqlite_client)
    _, key = merchant_with_key(sqlite_client, admin)
    assert sqlite_client.get("/api/v1/orders", headers=key).status_code == 200
    bad_token_good_key = sqlite_client.get(
        "/api/v1/orders", headers={**key, **bearer("not.a.jwt")})
    good_token_bad_key = sqlite_client.get(
        "/api/v1/orders", headers={**admin, "X-API-Key": "opk_nope_nope"})
    for refused in (bad_token_good_key, good_token_bad_key):
        assert refused.status_code == 401
        assert refused.headers["WWW-Authenticate"] == "Bearer"


def test_passwords_are_hashed_with_argon2id_at_owasp_parameters(sqlite_app):
    from app.extensions import db
    from app.infra.models import User

    create_user(sqlite_app, "hashed-user", "viewer")
    with sqlite_app.app_context():
        user = db.session.query(User).filter_by(username="hashed-user").one()
        assert user.password_hash.startswith("$argon2id$")
        assert "m=19456,t=2,p=1" in user.password_hash


def test_token_of_a_deactivated_user_is_refused(sqlite_app, sqlite_client):
    from app.extensions import db
    from app.infra.models import User

    create_user(sqlite_app, "leaver", "admin")
    token = token_for(sqlite_client, "leaver")
    with sqlite_app.app_context():
        db.session.query(User).filter_by(username="leaver").update({"is_active": False})
        db.session.commit()
    response = sqlite_client.post("/api/v1/merchants", json={"name": "x"}, headers=bearer(token))
    assert response.status_code == 401
