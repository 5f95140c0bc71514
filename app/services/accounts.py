"""Merchants, users and API keys."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from app.auth import api_keys, passwords
from app.auth.permissions import ROLES
from app.domain.errors import Conflict, FieldError, NotFound, ValidationFailed
from app.domain.ids import new_id
from app.extensions import db
from app.infra import cache_keys
from app.infra.models import ApiKey, Merchant, User
from app.infra.models.base import utcnow
from app.services import audit
from app.services.audit import SYSTEM, Actor

MIN_PASSWORD_LENGTH = 12


def create_merchant(name: str, actor: Actor = SYSTEM) -> Merchant:
    """A new merchant."""
    name = (name or "").strip()
    if not name:
        raise ValidationFailed([FieldError("name", "must not be empty")])
    merchant = Merchant(id=new_id("mer"), name=name)
    db.session.add(merchant)
    audit.record(actor, "merchant.create", "merchant", merchant.id, after={"name": name})
    db.session.commit()
    return merchant


def get_merchant(merchant_id: str) -> Merchant:
    merchant = db.session.scalar(select(Merchant).where(Merchant.id == merchant_id))
    if merchant is None:
        raise NotFound("merchant")
    return merchant


def create_api_key(merchant_id: str, name: str, actor: Actor = SYSTEM) -> tuple[ApiKey, str]:
    """A new key for the merchant; the plain key is returned here and never again."""
    get_merchant(merchant_id)
    name = (name or "").strip()
    if not name:
        raise ValidationFailed([FieldError("name", "must not be empty")])
    plain, prefix, key_hash = api_keys.generate()
    key = ApiKey(
        id=new_id("key"), merchant_id=merchant_id, name=name, prefix=prefix, key_hash=key_hash
    )
    db.session.add(key)
    audit.record(
        actor,
        "api_key.create",
        "api_key",
        key.id,
        after={"merchant_id": merchant_id, "name": name, "prefix": prefix},
    )
    db.session.commit()
    return key, plain


def revoke_api_key(key_id: str, actor: Actor = SYSTEM, reason: str | None = None) -> ApiKey:
    """Refuse the key from now on (idempotent)."""
    key = db.session.scalar(select(ApiKey).where(ApiKey.id == key_id))
    if key is None:
        raise NotFound("API key")
    if key.revoked_at is None:
        key.revoked_at = utcnow()
        audit.record(
            actor,
            "api_key.revoke",
            "api_key",
            key.id,
            before={"revoked": False},
            after={"revoked": True},
            reason=reason,
        )
        db.session.commit()
    cache_keys.invalidate_api_key(key.key_hash)  # refused from the next request, in every process
    return key


MAX_ROTATION_OVERLAP_SECONDS = 30 * 86400


def rotate_api_key(
    key_id: str, overlap_seconds: int, actor: Actor = SYSTEM
) -> tuple[ApiKey, str, ApiKey]:
    """A new key for the same merchant; the old one keeps working for `overlap_seconds`.

    Returns (new key, its plain value - shown only here, old key). Rotating a key that is already
    expiring only shortens its window, never extends it.
    """
    if not 0 <= overlap_seconds <= MAX_ROTATION_OVERLAP_SECONDS:
        raise ValidationFailed(
            [FieldError("overlap_seconds", f"must be 0 to {MAX_ROTATION_OVERLAP_SECONDS}")]
        )
    old = db.session.scalar(select(ApiKey).where(ApiKey.id == key_id))
    now = utcnow()
    if old is None:
        raise NotFound("API key")
    if old.revoked_at is not None or (old.expires_at and old.expires_at <= now):
        raise Conflict("the key is revoked or expired; create a new key instead")
    plain, prefix, key_hash = api_keys.generate()
    new = ApiKey(
        id=new_id("key"), merchant_id=old.merchant_id, name=old.name, prefix=prefix,
        key_hash=key_hash,
    )
    until = now + dt.timedelta(seconds=overlap_seconds)
    old.expires_at = min(old.expires_at, until) if old.expires_at else until
    db.session.add(new)
    audit.record(
        actor,
        "api_key.rotate",
        "api_key",
        old.id,
        after={"replaced_by": new.id, "prefix": prefix, "old_key_expires_at": until.isoformat()},
    )
    db.session.commit()
    cache_keys.invalidate_api_key(old.key_hash)  # its new expiry applies at once
    return new, plain, old


def find_active_api_key(plain: str) -> ApiKey | None:
    """The unrevoked, unexpired key matching a presented plain key."""
    key = db.session.scalar(select(ApiKey).where(ApiKey.key_hash == api_keys.hash_key(plain)))
    now = utcnow()
    if key is None or key.revoked_at is not None or (key.expires_at and key.expires_at <= now):
        return None
    return key


def create_user(
    username: str,
    password: str,
    role: str,
    merchant_id: str | None = None,
    actor: Actor = SYSTEM,
) -> User:
    """A new dashboard or API user; merchant users belong to exactly one merchant."""
    errors = []
    username = (username or "").strip()
    if not 3 <= len(username) <= 150:
        errors.append(FieldError("username", "must be 3 to 150 characters"))
    if not isinstance(password, str) or len(password) < MIN_PASSWORD_LENGTH:
        errors.append(FieldError("password", f"must be at least {MIN_PASSWORD_LENGTH} characters"))
    if role not in ROLES:
        errors.append(FieldError("role", "must be one of " + ", ".join(ROLES)))
    if role == "merchant" and not merchant_id:
        errors.append(FieldError("merchant_id", "is required for role merchant"))
    if role != "merchant" and merchant_id:
        errors.append(FieldError("merchant_id", "only merchant users belong to a merchant"))
    if errors:
        raise ValidationFailed(errors)
    if merchant_id:
        try:
            get_merchant(merchant_id)
        except NotFound:
            raise ValidationFailed([FieldError("merchant_id", "no such merchant")]) from None
    user = User(
        id=new_id("usr"),
        username=username,
        password_hash=passwords.hash_password(password),
        role=role,
        merchant_id=merchant_id,
    )
    db.session.add(user)
    audit.record(
        actor,
        "user.create",
        "user",
        user.id,
        after={"username": username, "role": role, "merchant_id": merchant_id},
    )
    try:
        db.session.commit()
    except IntegrityError:
        db.session.rollback()
        raise Conflict(f"username {username!r} is taken") from None
    return user


def authenticate(username: str, password: str) -> User | None:
    """The active user with these credentials, or None (same answer for every kind of wrong)."""
    user = db.session.scalar(select(User).where(User.username == username))
    if user is None:
        passwords.burn_time()  # an unknown user must not answer faster than a wrong password
        return None
    if not user.is_active or not passwords.verify_password(user.password_hash, password):
        return None
    return user


def get_user(user_id: str) -> User | None:
    return db.session.scalar(select(User).where(User.id == user_id))


def _staff_user(user_id: str) -> User:
    user = get_user(user_id)
    if user is None:
        raise NotFound("user")
    return user


def change_role(user_id: str, role: str, actor: Actor = SYSTEM, reason: str | None = None) -> User:
    """Give a user another role (audited); merchant users stay tied to their merchant."""
    user = _staff_user(user_id)
    if role not in ROLES:
        raise ValidationFailed([FieldError("role", "must be one of " + ", ".join(ROLES))])
    if (role == "merchant") != (user.merchant_id is not None):
        raise ValidationFailed(
            [FieldError("role", "merchant users and staff cannot swap roles; create a new user")]
        )
    if user.role != role:
        audit.record(
            actor, "user.change_role", "user", user.id,
            before={"role": user.role}, after={"role": role}, reason=reason,
        )
        user.role = role
        db.session.commit()
    return user


def set_user_active(
    user_id: str, active: bool, actor: Actor = SYSTEM, reason: str | None = None
) -> User:
    """Disable (or re-enable) a user: a disabled user can neither log in nor use a token."""
    user = _staff_user(user_id)
    if actor.name == user.username and not active:
        raise Conflict("you cannot disable your own account")
    if user.is_active != active:
        audit.record(
            actor, "user.enable" if active else "user.disable", "user", user.id,
            before={"active": user.is_active}, after={"active": active}, reason=reason,
        )
        user.is_active = active
        db.session.commit()
    return user


def list_users() -> list[User]:
    return list(db.session.scalars(select(User).order_by(User.username)))


def list_merchants_with_keys() -> list[tuple[Merchant, list[ApiKey]]]:
    """Every merchant with its API keys, newest key first."""
    merchants = list(db.session.scalars(select(Merchant).order_by(Merchant.name)))
    keys: dict[str, list[ApiKey]] = {m.id: [] for m in merchants}
    for key in db.session.scalars(select(ApiKey).order_by(ApiKey.seq.desc())):
        keys.setdefault(key.merchant_id, []).append(key)
    return [(m, keys[m.id]) for m in merchants]
