"""Runbooks: ordered steps for a known failure, and the recorded runs staff make through them."""

from __future__ import annotations

from dataclasses import dataclass, field

from sqlalchemy import func, select
from sqlalchemy.orm import selectinload

from app.domain.errors import Conflict, FieldError, NotFound, ValidationFailed
from app.domain.ids import new_id
from app.domain.runbooks import StepSpec, check_slug, format_steps, parse_steps
from app.extensions import db
from app.infra.models import Runbook, RunbookRun, RunbookRunStep, RunbookStep
from app.infra.models.base import utcnow
from app.services import audit
from app.services.audit import Actor

OUTCOMES = ("resolved", "escalated", "abandoned")


@dataclass(frozen=True)
class RunbookSpec:
    slug: str
    title: str
    summary: str
    steps: list[StepSpec] = field(default_factory=list)


def _step_rows(steps: list[StepSpec]) -> list[RunbookStep]:
    return [
        RunbookStep(position=position, title=step.title, body=step.body, command=step.command,
                    link_path=step.link_path, link_label=step.link_label)
        for position, step in enumerate(steps, start=1)
    ]


def steps_text(runbook: Runbook) -> str:
    """The runbook's steps as the text staff edit (what update_runbook takes back)."""
    return format_steps(
        [StepSpec(s.title, s.body, s.command, s.link_path, s.link_label) for s in runbook.steps]
    )


def _snapshot(runbook: Runbook) -> dict[str, str]:
    return {"title": runbook.title, "summary": runbook.summary, "steps": steps_text(runbook)}


def ensure_runbook(spec: RunbookSpec, actor: Actor) -> bool:
    """Create the runbook unless its slug exists (staff edits are never overwritten)."""
    if db.session.scalar(select(Runbook.id).where(Runbook.slug == spec.slug)):
        return False
    runbook = Runbook(id=new_id("rb"), slug=spec.slug, title=spec.title, summary=spec.summary)
    runbook.steps.extend(_step_rows(spec.steps))
    db.session.add(runbook)
    audit.record(actor, "runbook.create", "runbook", spec.slug, after={"title": spec.title})
    db.session.commit()
    return True


def _checked(title: str, summary: str, steps_text: str) -> tuple[str, str, list[StepSpec]]:
    title, summary = (title or "").strip(), (summary or "").strip()
    errors = []
    try:
        steps = parse_steps(steps_text)
    except ValidationFailed as invalid:
        errors.extend(invalid.errors)
        steps = []
    if not title:
        errors.append(FieldError("title", "must not be empty"))
    if not summary:
        errors.append(FieldError("summary", "say when to use this runbook"))
    if errors:
        raise ValidationFailed(errors)
    return title, summary, steps


def create_runbook(slug: str, title: str, summary: str, steps_text: str, actor: Actor) -> Runbook:
    """A new runbook written by staff; its slug is permanent (alerts link to it)."""
    slug = check_slug(slug)
    title, summary, steps = _checked(title, summary, steps_text)
    if db.session.scalar(select(Runbook.id).where(Runbook.slug == slug)):
        raise ValidationFailed([FieldError("slug", "a runbook with this slug exists")])
    runbook = Runbook(id=new_id("rb"), slug=slug, title=title, summary=summary)
    runbook.steps.extend(_step_rows(steps))
    db.session.add(runbook)
    audit.record(actor, "runbook.create", "runbook", slug, after=_snapshot(runbook))
    db.session.commit()
    return runbook


def update_runbook(slug: str, title: str, summary: str, steps_text: str, actor: Actor) -> Runbook:
    """Rewrite a runbook's text and steps; the audit entry keeps the previous version."""
    title, summary, steps = _checked(title, summary, steps_text)
    runbook = get_runbook(slug)
    before = _snapshot(runbook)
    runbook.title, runbook.summary = title, summary
    runbook.steps.clear()
    db.session.flush()  # the old positions go before the new ones take them
    runbook.steps.extend(_step_rows(steps))
    after = _snapshot(runbook)
    if after == before:
        db.session.rollback()
        return get_runbook(slug)
    runbook.updated_at = utcnow()
    changed = [k for k in after if after[k] != before[k]]
    audit.record(
        actor, "runbook.update", "runbook", slug,
        before={k: before[k] for k in changed}, after={k: after[k] for k in changed},
    )
    db.session.commit()
    return runbook


def list_runbooks() -> list[tuple[Runbook, int, RunbookRun | None]]:
    """Every runbook by title, with its number of steps and its latest run."""
    runbooks = list(db.session.scalars(select(Runbook).order_by(Runbook.title)))
    step_counts = dict(
        db.session.execute(
            select(RunbookStep.runbook_id, func.count()).group_by(RunbookStep.runbook_id)
        ).all()
    )
    latest_seqs = select(func.max(RunbookRun.seq)).group_by(RunbookRun.runbook_id)
    latest = {
        run.runbook_id: run
        for run in db.session.scalars(select(RunbookRun).where(RunbookRun.seq.in_(latest_seqs)))
    }
    return [(rb, step_counts.get(rb.id, 0), latest.get(rb.id)) for rb in runbooks]


def get_runbook(slug: str) -> Runbook:
    """One runbook with its steps, or NotFound."""
    runbook = db.session.scalar(
        select(Runbook).where(Runbook.slug == slug).options(selectinload(Runbook.steps))
    )
    if runbook is None:
        raise NotFound("runbook")
    return runbook


def recent_runs(runbook: Runbook, limit: int = 10) -> list[RunbookRun]:
    """The runbook's latest runs, newest first, with their ticks."""
    return list(
        db.session.scalars(
            select(RunbookRun)
            .where(RunbookRun.runbook_id == runbook.id)
            .options(selectinload(RunbookRun.ticks))
            .order_by(RunbookRun.seq.desc())
            .limit(limit)
        )
    )


def get_run(slug: str, run_id: str, *, for_update: bool = False) -> tuple[Runbook, RunbookRun]:
    """A run of this runbook, or NotFound; `for_update` locks it until the commit."""
    runbook = get_runbook(slug)
    query = (
        select(RunbookRun)
        .where(RunbookRun.id == run_id, RunbookRun.runbook_id == runbook.id)
        .options(selectinload(RunbookRun.ticks))
    )
    if for_update:
        # Two people ticking or finishing the same run at once take turns (PostgreSQL row lock;
        # SQLite writers are already serialised by BEGIN IMMEDIATE).
        query = query.with_for_update(of=RunbookRun).execution_options(populate_existing=True)
    run = db.session.scalar(query)
    if run is None:
        raise NotFound("runbook run")
    return runbook, run


def start_run(slug: str, reason: str, actor: Actor) -> RunbookRun:
    """Start working through a runbook; who and why are recorded."""
    runbook = get_runbook(slug)
    reason = (reason or "").strip()
    if not reason:
        raise ValidationFailed([FieldError("reason", "say what prompted this run")])
    run = RunbookRun(id=new_id("rbr"), runbook_id=runbook.id, started_by=actor.name, reason=reason)
    db.session.add(run)
    audit.record(
        actor, "runbook_run.start", "runbook_run", run.id, after={"runbook": slug}, reason=reason
    )
    db.session.commit()
    return run


def tick_step(
    slug: str, run_id: str, position: int, note: str, actor: Actor
) -> tuple[RunbookRunStep, bool]:
    """Mark a step of an open run done: (the tick, whether this call made it). Ticking a done step
    again changes nothing and returns the first tick (whoever made it)."""
    runbook, run = get_run(slug, run_id, for_update=True)
    if run.finished_at is not None:
        raise Conflict("this run is finished; start a new one")
    if position not in {s.position for s in runbook.steps}:
        raise ValidationFailed([FieldError("step", "no such step in this runbook")])
    for tick in run.ticks:
        if tick.step_position == position:
            return tick, False
    tick = RunbookRunStep(step_position=position, done_by=actor.name, note=(note or "").strip())
    run.ticks.append(tick)
    audit.record(
        actor,
        "runbook_run.tick",
        "runbook_run",
        run.id,
        after={"runbook": slug, "step": position},
        reason=tick.note or None,
    )
    db.session.commit()
    return tick, True


def finish_run(slug: str, run_id: str, outcome: str, notes: str, actor: Actor) -> RunbookRun:
    """Close a run with its outcome; steps left unticked are named in the audit entry."""
    runbook, run = get_run(slug, run_id, for_update=True)
    if run.finished_at is not None:
        raise Conflict("this run is already finished")
    if outcome not in OUTCOMES:
        raise ValidationFailed([FieldError("outcome", "one of " + ", ".join(OUTCOMES))])
    done = {t.step_position for t in run.ticks}
    skipped = [s.position for s in runbook.steps if s.position not in done]
    run.finished_at = utcnow()
    run.finished_by = actor.name
    run.outcome = outcome
    run.notes = (notes or "").strip() or None
    audit.record(
        actor,
        "runbook_run.finish",
        "runbook_run",
        run.id,
        before={"finished": False},
        after={"runbook": slug, "outcome": outcome, "skipped_steps": skipped},
        reason=run.notes,
    )
    db.session.commit()
    return run
