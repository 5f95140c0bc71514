"""Feature flags: stored in the database, seen by every process within seconds, without a restart.

Each process keeps a snapshot of all flags. It re-reads them from the database when the Redis
version key changed (checked at most every CHECK_SECONDS) and, whatever Redis says, at least every
MAX_AGE_SECONDS - so a change reaches every process within 5 s even if the version bump was lost.
"""

from __future__ import annotations

import logging
import re
import threading
import time
from typing import Any

from flask import current_app
from redis.exceptions import RedisError
from sqlalchemy import select

from app.domain.errors import FieldError, NotFound, ValidationFailed
from app.domain.flags import FLAG_TYPES, FlagState, flag_is_on
from app.extensions import db
from app.infra.models import FeatureFlag
from app.infra.models.base import utcnow
from app.services import audit
from app.services.audit import SYSTEM, Actor
from app.services.recovery import recover_stuck_sagas

log = logging.getLogger(__name__)

CHECK_SECONDS = 1.0
MAX_AGE_SECONDS = 4.0
VERSION_KEY = "flags:version"
NAME_PATTERN = re.compile(r"^[a-z][a-z0-9_]{1,79}$")

ORDERS_KILL_SWITCH = "orders_kill_switch"
PAYMENT_HOLD = "payment_hold"
DASHBOARD_AUTO_REFRESH = "dashboard_auto_refresh"
# The flags the system itself honours: (type, description, initial state); seeded by seed-demo.
BUILTIN_FLAGS: dict[str, tuple[str, str, bool]] = {
    ORDERS_KILL_SWITCH: (
        "kill_switch",
        "Refuse new orders: POST /api/v1/orders answers 503 with Retry-After. Orders already "
        "placed keep being processed.",
        False,
    ),
    PAYMENT_HOLD: (
        "kill_switch",
        "Hold every saga before capture_payment (payment provider incident). Held orders wait, "
        "they do not fail, and continue within seconds of switching this off.",
        False,
    ),
    DASHBOARD_AUTO_REFRESH: (
        "operational",
        "Auto-refresh of the shift view, order and queue pages; switch off to shed dashboard "
        "load during an incident (pages still work, they just stop polling).",
        True,
    ),
}


class FlagSnapshotCache:
    """One process's view of the flags; thread-safe, refreshed by version key and by age."""

    def __init__(self, redis_client, version_key: str):
        self.redis = redis_client
        self.version_key = version_key
        self.lock = threading.Lock()
        self.flags: dict[str, FlagState] | None = None
        self.version: bytes | None = None
        self.loaded_at = 0.0
        self.checked_at = 0.0

    def get(self) -> dict[str, FlagState]:
        with self.lock:
            now = time.monotonic()
            if self.flags is not None and now - self.checked_at < CHECK_SECONDS:
                return self.flags
            self.checked_at = now
            try:
                version = self.redis.get(self.version_key)
            except RedisError:
                version = self.version  # fall back to the age rule below
            stale = now - self.loaded_at >= MAX_AGE_SECONDS
            if self.flags is None or version != self.version or stale:
                self.flags = _load_states()
                self.version = version
                self.loaded_at = now
            return self.flags

    def clear(self) -> None:
        with self.lock:
            self.flags = None


def _load_states() -> dict[str, FlagState]:
    rows = db.session.scalars(select(FeatureFlag)).all()
    return {
        f.name: FlagState(f.name, f.enabled, f.rollout_percentage, dict(f.overrides or {}))
        for f in rows
    }


def _cache() -> FlagSnapshotCache:
    cache = current_app.extensions.get("flag_cache")
    if cache is None:
        cache = FlagSnapshotCache(
            current_app.extensions["redis"], current_app.config["QUEUE_PREFIX"] + VERSION_KEY
        )
        current_app.extensions["flag_cache"] = cache
    return cache


def is_enabled(name: str, merchant_id: str | None = None, default: bool = False) -> bool:
    """Is the flag on (for this merchant)? From the process snapshot (<= 5 s old); `default`
    answers while the flag does not exist."""
    flag = _cache().get().get(name)
    return default if flag is None else flag_is_on(flag, merchant_id)


def is_enabled_now(name: str, merchant_id: str | None = None, default: bool = False) -> bool:
    """Like is_enabled, but read from the database: for the rare decision that must not act on a
    snapshot up to 5 s old (holding a saga right after the hold was lifted)."""
    row = db.session.scalar(select(FeatureFlag).where(FeatureFlag.name == name))
    if row is None:
        return default
    state = FlagState(row.name, row.enabled, row.rollout_percentage, dict(row.overrides or {}))
    return flag_is_on(state, merchant_id)


def list_flags() -> list[FeatureFlag]:
    """Every flag, kill switches first, then by name."""
    rows = db.session.scalars(select(FeatureFlag).order_by(FeatureFlag.name)).all()
    return sorted(rows, key=lambda f: (FLAG_TYPES.index(f.type) * -1, f.name))


def get_flag(name: str) -> FeatureFlag:
    flag = db.session.scalar(select(FeatureFlag).where(FeatureFlag.name == name))
    if flag is None:
        raise NotFound("flag")
    return flag


def flag_state(flag: FeatureFlag) -> dict[str, Any]:
    """What a change can change: compared before and after, and kept in the audit entry."""
    return {
        "enabled": flag.enabled,
        "rollout_percentage": flag.rollout_percentage,
        "overrides": dict(flag.overrides or {}),
    }


def _validate(
    name: str, rollout_percentage: Any, overrides: Any, flag_type: str | None
) -> None:
    errors = []
    if not NAME_PATTERN.match(name or ""):
        errors.append(FieldError("name", "must be 2-80 lowercase letters, digits or _"))
    if rollout_percentage is not None and (
        isinstance(rollout_percentage, bool)
        or not isinstance(rollout_percentage, int)
        or not 0 <= rollout_percentage <= 100
    ):
        errors.append(FieldError("rollout_percentage", "must be an integer from 0 to 100"))
    if overrides is not None and (
        not isinstance(overrides, dict)
        or not all(isinstance(k, str) and isinstance(v, bool) for k, v in overrides.items())
    ):
        errors.append(FieldError("overrides", "must map merchant ids to true or false"))
    if flag_type is not None and flag_type not in FLAG_TYPES:
        errors.append(FieldError("type", "must be one of " + ", ".join(FLAG_TYPES)))
    if errors:
        raise ValidationFailed(errors)


def set_flag(
    name: str,
    *,
    enabled: bool | None = None,
    rollout_percentage: int | None = None,
    overrides: dict[str, bool] | None = None,
    actor: Actor = SYSTEM,
    reason: str | None = None,
    create_type: str | None = None,
    description: str | None = None,
) -> FeatureFlag:
    """Change a flag (audited) and tell every process; `create_type` creates a missing one.

    Setting a flag to the state it is in changes nothing: no audit entry (the log records
    changes), no new `updated_at`/`updated_by`, no announcement.
    """
    _validate(name, rollout_percentage, overrides, create_type)
    flag = db.session.scalar(select(FeatureFlag).where(FeatureFlag.name == name))
    before = None
    if flag is None:
        if create_type is None:
            raise NotFound("flag")
        flag = FeatureFlag(
            name=name,
            type=create_type,
            description=description or "",
            enabled=False,
            rollout_percentage=100,
            overrides={},
        )
        db.session.add(flag)
    else:
        before = flag_state(flag)
    if enabled is not None:
        flag.enabled = bool(enabled)
    if rollout_percentage is not None:
        flag.rollout_percentage = rollout_percentage
    if overrides is not None:
        flag.overrides = dict(overrides)
    if before is not None and flag_state(flag) == before:
        db.session.rollback()  # the same values: nothing to write (the flag reloads as it was)
        return flag
    flag.updated_at = utcnow()
    flag.updated_by = actor.name
    audit.record(
        actor,
        "flag.update" if before is not None else "flag.create",
        "flag",
        name,
        before=before,
        after=flag_state(flag),
        reason=reason,
    )
    db.session.commit()
    announce_change()
    if name == PAYMENT_HOLD and before is not None and before["enabled"] and not flag.enabled:
        _resume_held_sagas()
    return flag


def _resume_held_sagas() -> None:
    """Lifting the payment hold queues the waiting sagas now, not at the next recovery scan."""
    try:
        recover_stuck_sagas(current_app.extensions["job_queue"], stuck_after_seconds=0)
    except RedisError:
        log.warning("could not queue held sagas; the scheduler's recovery scan will")


def announce_change() -> None:
    """Bump the version key so every process reloads within CHECK_SECONDS (after the commit)."""
    _cache().clear()
    try:
        current_app.extensions["redis"].incr(current_app.config["QUEUE_PREFIX"] + VERSION_KEY)
    except RedisError:
        log.warning("could not announce a flag change; processes pick it up by age")


def ensure_builtin_flags(actor: Actor = SYSTEM) -> list[str]:
    """Create the flags the system honours (off) where missing; the names created."""
    existing = set(db.session.scalars(select(FeatureFlag.name)))
    created = []
    for name, (flag_type, description, initially) in BUILTIN_FLAGS.items():
        if name not in existing:
            set_flag(name, enabled=initially, actor=actor, create_type=flag_type,
                     description=description, reason="built-in flag")
            created.append(name)
    return created
