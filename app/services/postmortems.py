"""Postmortems on the Google SRE template, and their action items."""

from __future__ import annotations

import datetime as dt
from dataclasses import asdict, dataclass

from sqlalchemy import func, select
from sqlalchemy.orm import selectinload

from app.domain.errors import FieldError, NotFound, ValidationFailed
from app.domain.ids import new_id
from app.extensions import db
from app.infra.models import ActionItem, Postmortem
from app.infra.models.base import utcnow
from app.services import audit
from app.services.audit import Actor

STATUSES = ("draft", "in review", "final")
ACTION_KINDS = ("mitigate", "prevent", "process", "other")
ACTION_STATES = ("open", "in progress", "done", "won't do")
# The template's sections, in the order the page shows them.
SECTIONS = (
    "summary", "impact", "timeline", "root_cause", "trigger", "resolution", "detection",
    "went_well", "went_wrong", "got_lucky",
)


@dataclass(frozen=True)
class PostmortemInput:
    title: str
    incident_date: dt.date | None
    status: str = "draft"
    summary: str = ""
    impact: str = ""
    timeline: str = ""
    root_cause: str = ""
    trigger: str = ""
    resolution: str = ""
    detection: str = ""
    went_well: str = ""
    went_wrong: str = ""
    got_lucky: str = ""


@dataclass(frozen=True)
class ActionItemInput:
    description: str
    owner: str
    kind: str = "prevent"
    due_date: dt.date | None = None


def _validated(data: PostmortemInput) -> dict:
    values = {k: (v.strip() if isinstance(v, str) else v) for k, v in asdict(data).items()}
    errors = []
    if not values["title"]:
        errors.append(FieldError("title", "must not be empty"))
    if values["incident_date"] is None:
        errors.append(FieldError("incident_date", "when did it happen?"))
    if values["status"] not in STATUSES:
        errors.append(FieldError("status", "one of " + ", ".join(STATUSES)))
    if not values["summary"]:
        errors.append(FieldError("summary", "one or two sentences on what happened"))
    if errors:
        raise ValidationFailed(errors)
    return values


def _jsonable(values: dict) -> dict:
    return {k: v.isoformat() if isinstance(v, dt.date) else v for k, v in values.items()}


def create_postmortem(data: PostmortemInput, actor: Actor) -> Postmortem:
    """A new postmortem, audited."""
    values = _validated(data)
    postmortem = Postmortem(id=new_id("pm"), created_by=actor.name, **values)
    db.session.add(postmortem)
    audit.record(
        actor, "postmortem.create", "postmortem", postmortem.id,
        after={"title": values["title"], "status": values["status"]},
    )
    db.session.commit()
    return postmortem


def update_postmortem(postmortem_id: str, data: PostmortemInput, actor: Actor) -> Postmortem:
    """Edit a postmortem; the audit entry holds the changed fields before and after."""
    values = _validated(data)
    postmortem = get_postmortem(postmortem_id)
    changed = {k: v for k, v in values.items() if getattr(postmortem, k) != v}
    if not changed:
        return postmortem
    before = _jsonable({k: getattr(postmortem, k) for k in changed})
    for name, value in changed.items():
        setattr(postmortem, name, value)
    postmortem.updated_at = utcnow()
    audit.record(
        actor, "postmortem.update", "postmortem", postmortem.id,
        before=before, after=_jsonable(changed),
    )
    db.session.commit()
    return postmortem


def get_postmortem(postmortem_id: str) -> Postmortem:
    """One postmortem with its action items, or NotFound."""
    postmortem = db.session.scalar(
        select(Postmortem)
        .where(Postmortem.id == postmortem_id)
        .options(selectinload(Postmortem.action_items))
    )
    if postmortem is None:
        raise NotFound("postmortem")
    return postmortem


def list_postmortems() -> list[tuple[Postmortem, int, int]]:
    """Postmortems, latest incident first, with (open action items, all action items)."""
    counts = {
        pm_id: (open_, total)
        for pm_id, total, open_ in db.session.execute(
            select(
                ActionItem.postmortem_id,
                func.count(),
                func.count().filter(ActionItem.state.in_(("open", "in progress"))),
            ).group_by(ActionItem.postmortem_id)
        )
    }
    postmortems = db.session.scalars(
        select(Postmortem).order_by(Postmortem.incident_date.desc(), Postmortem.seq.desc())
    )
    return [(pm, *counts.get(pm.id, (0, 0))) for pm in postmortems]


def add_action_item(postmortem_id: str, data: ActionItemInput, actor: Actor) -> ActionItem:
    """A new open action item with an owner; audited."""
    postmortem = get_postmortem(postmortem_id)
    description, owner = (data.description or "").strip(), (data.owner or "").strip()
    errors = []
    if not description:
        errors.append(FieldError("description", "must not be empty"))
    if not owner:
        errors.append(FieldError("owner", "every action item needs an owner"))
    if data.kind not in ACTION_KINDS:
        errors.append(FieldError("kind", "one of " + ", ".join(ACTION_KINDS)))
    if errors:
        raise ValidationFailed(errors)
    item = ActionItem(
        id=new_id("act"), description=description, owner=owner, kind=data.kind,
        due_date=data.due_date, state="open",
    )
    postmortem.action_items.append(item)
    audit.record(
        actor, "action_item.create", "action_item", item.id,
        after={"postmortem": postmortem.id, "description": description, "owner": owner,
               "kind": data.kind, "due_date": data.due_date.isoformat() if data.due_date else None},
    )
    db.session.commit()
    return item


def set_action_item_state(
    postmortem_id: str, item_id: str, state: str, reason: str, actor: Actor
) -> ActionItem:
    """Move an action item to another state; audited with before and after."""
    if state not in ACTION_STATES:
        raise ValidationFailed([FieldError("state", "one of " + ", ".join(ACTION_STATES))])
    item = db.session.scalar(
        select(ActionItem).where(
            ActionItem.id == item_id, ActionItem.postmortem_id == postmortem_id
        )
    )
    if item is None:
        raise NotFound("action item")
    if item.state == state:
        return item
    before = item.state
    item.state = state
    item.updated_at = utcnow()
    audit.record(
        actor, "action_item.state", "action_item", item.id,
        before={"state": before}, after={"state": state}, reason=(reason or "").strip() or None,
    )
    db.session.commit()
    return item
