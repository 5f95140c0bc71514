"""Merchants, users and API keys."""

from __future__ import annotations

import datetime as dt
import logging

import redis
from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError

from app.auth import api_keys, passwords
from app.auth.permissions import ROLES
from app.domain.errors import Conflict, FieldError, NotFound, ValidationFailed
from app.domain.ids import new_id
from app.extensions import db
from app.infra import cache_keys
from app.infra.models import ApiKey, Merchant, User
from app.infra.models.base import utcnow
from app.infra.redis_client import get_redis
from app.services import audit
from app.services.audit import SYSTEM, Actor

log = logging.getLogger(__name__)

MIN_PASSWORD_LENGTH = 12


def merchant_name_taken(name: str) -> bool:
    """Is there a merchant of this name already (ignoring case and surrounding spaces)?"""
    wanted = name.strip().casefold()
    # Compared in Python: SQLite's lower() folds ASCII only, and PostgreSQL's depends on the
    # database's locale. Merchants are created by hand, a few hundred rows at most.
    return any(
        existing.strip().casefold() == wanted
        for existing in db.session.scalars(select(Merchant.name))
    )


def create_merchant(name: str, actor: Actor = SYSTEM, *, unique_name: bool = False) -> Merchant:
    """A new merchant. With `unique_name` (the dashboard, where staff pick merchants by name) a
    name another merchant has, in any case, is a Conflict; the API identifies merchants by id
    and its contract answers 201 to any valid name, so a script creating "Test shop" twice works.
    """
    name = (name or "").strip()
    if not name:
        raise ValidationFailed([FieldError("name", "must not be empty")])
    if unique_name and merchant_name_taken(name):
        raise Conflict(f"a merchant named {name!r} exists already")
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


def unknown_merchant_ids(merchant_ids) -> list[str]:
    """The ids among `merchant_ids` that name no merchant, sorted."""
    wanted = set(merchant_ids)
    if not wanted:
        return []
    known = set(db.session.scalars(select(Merchant.id).where(Merchant.id.in_(wanted))))
    return sorted(wanted - known)


def revoke_api_key(key_id: str, actor: Actor = SYSTEM, reason: str | None = None) -> ApiKey:
    """Refuse the key from now on (idempotent)."""
    return revoke_api_key_once(key_id, actor, reason)[0]


def revoke_api_key_once(
    key_id: str, actor: Actor = SYSTEM, reason: str | None = None
) -> tuple[ApiKey, bool]:
    """Revoke the key; (key, False) when it was revoked already (nothing changed, no audit)."""
    key = db.session.scalar(select(ApiKey).where(ApiKey.id == key_id))
    if key is None:
        raise NotFound("API key")
    # One conditional UPDATE: of two admins revoking at once, one revokes and one is told it
    # was revoked already, and the audit log has one entry.
    revoked_at = utcnow()
    result = db.session.execute(
        update(ApiKey)
        .where(ApiKey.id == key_id, ApiKey.revoked_at.is_(None))
        .values(revoked_at=revoked_at)
        .execution_options(synchronize_session=False)
    )
    revoked_now = result.rowcount == 1
    if revoked_now:
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
    db.session.refresh(key)
    cache_keys.invalidate_api_key(key.key_hash)  # refused from the next request, in every process
    return key, revoked_now


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


def note_api_key_used(key_id: str) -> None:
    """Record that a key was just used (the admin page's "last used").

    Called when a key is looked up in the database, i.e. at most once per principal-cache
    lifetime (API_KEY_TTL_SECONDS) per process: a busy key costs no write per request, and the
    time shown is right to within that lifetime."""
    db.session.execute(update(ApiKey).where(ApiKey.id == key_id).values(last_used_at=utcnow()))
    db.session.commit()


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


def _refuse_removing_the_last_admin(user: User) -> None:
    """Conflict when `user` is the only active admin: without one, nobody can manage accounts
    (every /admin page answers 403) and only a database edit brings an admin back."""
    if user.role != "admin" or not user.is_active:
        return
    # Every active admin's row is locked (PostgreSQL; in id order, so no deadlock): of two admins
    # demoting or disabling each other at the same moment, the second waits, then sees the
    # first's change and is refused. SQLite serializes the two writes by itself.
    admins = db.session.scalars(
        select(User.id)
        .where(User.role == "admin", User.is_active.is_(True))
        .order_by(User.id)
        .with_for_update()
    ).all()
    if not [admin_id for admin_id in admins if admin_id != user.id]:
        raise Conflict(
            f"{user.username} is the only active admin; make another user admin first"
        )


def change_role(user_id: str, role: str, actor: Actor = SYSTEM, reason: str | None = None) -> User:
    """Give a user another role (audited); merchant users stay tied to their merchant, and the
    last active admin stays an admin."""
    user = _staff_user(user_id)
    if role not in ROLES:
        raise ValidationFailed([FieldError("role", "must be one of " + ", ".join(ROLES))])
    if (role == "merchant") != (user.merchant_id is not None):
        raise ValidationFailed(
            [FieldError("role", "merchant users and staff cannot swap roles; create a new user")]
        )
    if user.role != role:
        if role != "admin":
            _refuse_removing_the_last_admin(user)
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
    """Disable (or re-enable) a user: a disabled user can neither log in nor use a token. The last
    active admin cannot be disabled."""
    user = _staff_user(user_id)
    if actor.name == user.username and not active:
        raise Conflict("you cannot disable your own account")
    if user.is_active != active:
        if not active:
            _refuse_removing_the_last_admin(user)
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


# Dashboard sessions live in the signed cookie; logging out records the session's id here so a
# copy of the cookie is refused afterwards. Kept for as long as such a cookie can be valid.
ENDED_SESSION_KEY = "session:ended:{}"
SENT_FORM_KEY = "form:sent:{}"


def _ended_session_key(session_id: str) -> str:
    from flask import current_app

    return current_app.config["QUEUE_PREFIX"] + ENDED_SESSION_KEY.format(session_id)


def end_session(session_id: str, lifetime_seconds: int) -> bool:
    """Record a logged-out session id for `lifetime_seconds`; False when Redis is unreachable."""
    try:
        get_redis().set(_ended_session_key(session_id), 1, ex=max(1, int(lifetime_seconds)))
    except redis.RedisError as exc:
        log.warning("could not record a logged-out session; a copy of its cookie stays valid "
                    "until it expires: %s", exc)
        return False
    return True


def session_ended(session_id: str) -> bool:
    """Was this session logged out? Fails open: with Redis unreachable the answer is False."""
    try:
        return bool(get_redis().exists(_ended_session_key(session_id)))
    except redis.RedisError as exc:
        # Availability over the revocation check: with Redis down, staff keep working in the
        # dashboard during the incident (the cookie is still signed, still expires, and a
        # disabled user is still refused); only a copied cookie of a logged-out session would
        # pass meanwhile.
        log.warning("could not check whether a session was logged out; letting it in: %s", exc)
        return False


def first_submission(form_token: str) -> bool:
    """True the first time a form carrying this one-off token is sent, False on a repeat (a
    reload that posts the page again). Fails open: with Redis unreachable every send counts
    as the first."""
    from flask import current_app

    key = current_app.config["QUEUE_PREFIX"] + SENT_FORM_KEY.format(form_token)
    try:
        return bool(get_redis().set(key, 1, nx=True, ex=86400))
    except redis.RedisError as exc:
        log.warning("could not check a form for a repeat send: %s", exc)
        return True
