"""JWT access tokens (authlib): HS256 only, with iss, aud, exp, nbf, iat and jti checked.

Signing keys carry a key id (`kid`); the previous key stays valid for verification during rotation,
so tokens issued before a rotation keep working until they expire.
"""

from __future__ import annotations

import time
import uuid
import warnings
from dataclasses import dataclass
from typing import Any

from authlib.deprecate import AuthlibDeprecationWarning

# authlib.jose is the design card's JWT library; it warns that its successor is joserfc (the same
# project). The warning says nothing an operator can act on, so it is kept out of the logs.
warnings.filterwarnings("ignore", category=AuthlibDeprecationWarning)
from authlib.jose import JsonWebToken  # noqa: E402
from authlib.jose.errors import JoseError  # noqa: E402

ALGORITHM = "HS256"
_jwt = JsonWebToken([ALGORITHM])  # the allow-list: `none` and every other algorithm are refused


class InvalidToken(Exception):
    """The token is malformed, forged, expired or not meant for us."""


@dataclass(frozen=True)
class SigningKey:
    kid: str
    secret: str


def issue(
    key: SigningKey,
    *,
    subject: str,
    role: str,
    merchant_id: str | None,
    issuer: str,
    audience: str,
    ttl_seconds: int,
    now: float | None = None,
) -> str:
    """A signed access token for the user."""
    issued = int(now if now is not None else time.time())
    claims: dict[str, Any] = {
        "sub": subject,
        "role": role,
        "iss": issuer,
        "aud": audience,
        "iat": issued,
        "nbf": issued,
        "exp": issued + ttl_seconds,
        "jti": uuid.uuid4().hex,
    }
    if merchant_id:
        claims["merchant_id"] = merchant_id
    header = {"alg": ALGORITHM, "typ": "JWT", "kid": key.kid}
    return _jwt.encode(header, claims, key.secret).decode()


def verify(
    token: str, keys: list[SigningKey], *, issuer: str, audience: str, now: float | None = None
) -> dict[str, Any]:
    """The claims of a valid token; InvalidToken for anything else."""
    by_kid = {k.kid: k for k in keys}
    options = {
        "iss": {"essential": True, "value": issuer},
        "aud": {"essential": True, "value": audience},
        "exp": {"essential": True},
        "nbf": {"essential": True},
        "iat": {"essential": True},
        "jti": {"essential": True},
        "sub": {"essential": True},
        "role": {"essential": True},
    }

    def pick_key(header, _payload):
        if header.get("alg") != ALGORITHM:
            raise InvalidToken("algorithm not allowed")
        kid = header.get("kid")
        key = by_kid.get(kid) if kid else keys[0]
        if key is None:
            raise InvalidToken("unknown key id")
        return key.secret

    try:
        claims = _jwt.decode(token, pick_key, claims_options=options)
        claims.validate(now=int(now if now is not None else time.time()), leeway=0)
    except (JoseError, ValueError, TypeError, KeyError) as exc:
        raise InvalidToken(type(exc).__name__) from None
    aud = claims.get("aud")
    if aud != audience and not (isinstance(aud, list) and audience in aud):
        raise InvalidToken("wrong audience")
    return dict(claims)
