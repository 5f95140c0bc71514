"""Chaos drills: change the simulated providers' failure rate and latency at run time, audited."""

from __future__ import annotations

from flask import current_app

from app.domain.chaos import validate_changes
from app.extensions import db
from app.infra.runtime_settings import RuntimeSettings
from app.services import audit
from app.services.audit import Actor


def _store() -> RuntimeSettings:
    return current_app.extensions["runtime_settings"]


def chaos_settings() -> dict[str, float | int]:
    """The knobs as every process sees them now."""
    return _store().chaos()


def update_chaos(changes: dict[str, object], actor: Actor, reason: str | None = None) -> dict:
    """Apply validated changes (unknown or out-of-range knobs are refused); returns all knobs."""
    clean = validate_changes(changes)
    before = chaos_settings()
    changed = {k: v for k, v in clean.items() if before[k] != v}
    if changed:
        audit.record(actor, "chaos.update", "chaos", "providers",
                     before={k: before[k] for k in changed}, after=changed, reason=reason)
        db.session.commit()  # the audit row first: a change nobody can trace must not happen
        _store().set_chaos(changed)
    return chaos_settings()


def reset_chaos(actor: Actor, reason: str | None = None) -> dict:
    """Every knob back to 0: healthy providers."""
    before = chaos_settings()
    if any(before.values()):
        audit.record(actor, "chaos.reset", "chaos", "providers", before=before, reason=reason)
        db.session.commit()
        _store().reset_chaos()
    return chaos_settings()
