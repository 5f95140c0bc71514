"""One audit service for the dashboard, the API and the CLI.

`record()` adds the entry to the caller's transaction, so the audit row commits (or rolls back)
with the change it describes. Call it before the service's commit.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from sqlalchemy import or_, select

from app.domain.ids import new_id
from app.extensions import db
from app.infra.models import AuditEntry
from app.infra.models.base import utcnow
from app.services.pagination import Page, paginate, within_days


@dataclass(frozen=True)
class Actor:
    """Who did it and through which door."""

    name: str
    role: str | None
    source: str  # web | api | cli | system
    request_id: str | None = None
    ip: str | None = None


SYSTEM = Actor(name="system", role=None, source="system")


def record(
    actor: Actor,
    action: str,
    target_type: str,
    target_id: str | None,
    *,
    before: dict[str, Any] | None = None,
    after: dict[str, Any] | None = None,
    reason: str | None = None,
) -> AuditEntry:
    """Add an audit entry to the current transaction (the caller commits)."""
    entry = AuditEntry(
        id=new_id("aud"),
        at=utcnow(),
        actor=actor.name,
        actor_role=actor.role,
        source=actor.source,
        action=action,
        target_type=target_type,
        target_id=target_id,
        before=before,
        after=after,
        reason=reason or None,
        request_id=actor.request_id,
        ip=actor.ip,
    )
    db.session.add(entry)
    return entry


def list_entries(
    *,
    actor: str | None = None,
    action: str | None = None,
    target_type: str | None = None,
    target_id: str | None = None,
    source: str | None = None,
    first_day: dt.date | None = None,
    last_day: dt.date | None = None,
    limit: int | None = None,
    cursor: str | None = None,
) -> Page:
    """The audit log, newest first, filtered (days: UTC, both whole days; `action` matches
    itself and its dotted family)."""
    query = select(AuditEntry)
    if action:
        # "runbook_run" finds runbook_run.start, .tick, ...: actions are dotted families.
        family = AuditEntry.action.startswith(action + ".", autoescape=True)
        query = query.where(or_(AuditEntry.action == action, family))
    for column, value in (
        (AuditEntry.actor, actor),
        (AuditEntry.target_type, target_type),
        (AuditEntry.target_id, target_id),
        (AuditEntry.source, source),
    ):
        if value:
            query = query.where(column == value)
    query = within_days(query, AuditEntry.at, first_day, last_day)
    return paginate(query, AuditEntry.seq, limit, cursor)
