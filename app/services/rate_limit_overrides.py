"""Run-time rate limit overrides (the `rate-limits` CLI), audited like every other change."""

from __future__ import annotations

from app.auth.rate_limits import configured_limit, set_runtime_limit
from app.extensions import db
from app.services import audit
from app.services.audit import Actor


def override(name: str, value: str | None, actor: Actor) -> None:
    """Set NAME to VALUE in every process (None: back to the configuration), then audit it.

    The override lives in Redis, the audit entry in the database: the override is written first,
    so an entry is never left describing a change that did not happen (ValueError: a malformed
    limit, nothing changed or recorded).
    """
    before = configured_limit(name)
    set_runtime_limit(name, value)
    audit.record(
        actor,
        "rate_limit.set" if value is not None else "rate_limit.clear",
        "setting",
        name,
        before={"limit": before},
        after={"limit": value if value is not None else configured_limit(name)},
    )
    db.session.commit()
