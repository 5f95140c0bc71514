"""What staff know: knowledge base articles, runbooks with their recorded runs, and postmortems.

Full-text search over articles is kept by the database itself (see migration 0004): a generated
`tsvector` column with a GIN index on PostgreSQL, an FTS5 table kept in sync by triggers on SQLite.
Neither is mapped here; `app.infra.fulltext` is the one place that queries them.
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy import Date, ForeignKey, Index, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from app.extensions import db
from app.infra.models.base import UTCDateTime, utcnow


class KbArticle(db.Model):
    __tablename__ = "kb_articles"
    seq: Mapped[int] = mapped_column(primary_key=True, autoincrement=True)
    id: Mapped[str] = mapped_column(String(40), unique=True)
    title: Mapped[str] = mapped_column(String(200))
    # Markdown: what was seen, and what fixed it.
    issue: Mapped[str] = mapped_column(Text)
    resolution: Mapped[str] = mapped_column(Text)
    # Lower-case tags separated by single spaces ("redis queues"), searchable like the text.
    tags: Mapped[str] = mapped_column(String(500), default="")
    created_by: Mapped[str] = mapped_column(String(200))
    updated_by: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow, index=True)


class Runbook(db.Model):
    __tablename__ = "runbooks"
    seq: Mapped[int] = mapped_column(primary_key=True, autoincrement=True)
    id: Mapped[str] = mapped_column(String(40), unique=True)
    # Stable: alert rules and the SLO page link to /runbooks/<slug>.
    slug: Mapped[str] = mapped_column(String(80), unique=True)
    title: Mapped[str] = mapped_column(String(200))
    summary: Mapped[str] = mapped_column(Text)  # Markdown: symptoms and when to use it
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)

    steps: Mapped[list[RunbookStep]] = relationship(
        back_populates="runbook", order_by="RunbookStep.position", cascade="all, delete-orphan"
    )


class RunbookStep(db.Model):
    __tablename__ = "runbook_steps"
    __table_args__ = (UniqueConstraint("runbook_id", "position"),)
    seq: Mapped[int] = mapped_column(primary_key=True, autoincrement=True)
    runbook_id: Mapped[str] = mapped_column(ForeignKey("runbooks.id"))
    position: Mapped[int]  # 1-based order of the steps
    title: Mapped[str] = mapped_column(String(200))
    body: Mapped[str] = mapped_column(Text, default="")  # Markdown
    command: Mapped[str | None] = mapped_column(Text)  # a shell command to copy
    link_path: Mapped[str | None] = mapped_column(String(300))  # a dashboard page or action
    link_label: Mapped[str | None] = mapped_column(String(120))

    runbook: Mapped[Runbook] = relationship(back_populates="steps")


class RunbookRun(db.Model):
    __tablename__ = "runbook_runs"
    __table_args__ = (Index("ix_runbook_runs_runbook_seq", "runbook_id", "seq"),)
    seq: Mapped[int] = mapped_column(primary_key=True, autoincrement=True)
    id: Mapped[str] = mapped_column(String(40), unique=True)
    runbook_id: Mapped[str] = mapped_column(ForeignKey("runbooks.id"))
    started_by: Mapped[str] = mapped_column(String(200))
    started_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    reason: Mapped[str | None] = mapped_column(Text)  # the alert or incident that prompted it
    finished_by: Mapped[str | None] = mapped_column(String(200))
    finished_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    outcome: Mapped[str | None] = mapped_column(String(20))  # resolved | escalated | abandoned
    notes: Mapped[str | None] = mapped_column(Text)

    ticks: Mapped[list[RunbookRunStep]] = relationship(
        back_populates="run", order_by="RunbookRunStep.seq", cascade="all, delete-orphan"
    )


class RunbookRunStep(db.Model):
    """One ticked step of a run: who did it and when."""

    __tablename__ = "runbook_run_steps"
    __table_args__ = (UniqueConstraint("run_id", "step_position"),)
    seq: Mapped[int] = mapped_column(primary_key=True, autoincrement=True)
    run_id: Mapped[str] = mapped_column(ForeignKey("runbook_runs.id"))
    step_position: Mapped[int]
    done_by: Mapped[str] = mapped_column(String(200))
    done_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    note: Mapped[str | None] = mapped_column(Text)

    run: Mapped[RunbookRun] = relationship(back_populates="ticks")


class Postmortem(db.Model):
    """A blameless postmortem on the Google SRE template."""

    __tablename__ = "postmortems"
    seq: Mapped[int] = mapped_column(primary_key=True, autoincrement=True)
    id: Mapped[str] = mapped_column(String(40), unique=True)
    title: Mapped[str] = mapped_column(String(200))
    incident_date: Mapped[dt.date] = mapped_column(Date)
    status: Mapped[str] = mapped_column(String(20), default="draft")  # draft | in review | final
    # The template's sections, each Markdown.
    summary: Mapped[str] = mapped_column(Text, default="")
    impact: Mapped[str] = mapped_column(Text, default="")
    timeline: Mapped[str] = mapped_column(Text, default="")
    root_cause: Mapped[str] = mapped_column(Text, default="")
    trigger: Mapped[str] = mapped_column(Text, default="")
    resolution: Mapped[str] = mapped_column(Text, default="")
    detection: Mapped[str] = mapped_column(Text, default="")
    went_well: Mapped[str] = mapped_column(Text, default="")
    went_wrong: Mapped[str] = mapped_column(Text, default="")
    got_lucky: Mapped[str] = mapped_column(Text, default="")
    created_by: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)

    action_items: Mapped[list[ActionItem]] = relationship(
        back_populates="postmortem", order_by="ActionItem.seq", cascade="all, delete-orphan"
    )


class ActionItem(db.Model):
    __tablename__ = "postmortem_action_items"
    seq: Mapped[int] = mapped_column(primary_key=True, autoincrement=True)
    id: Mapped[str] = mapped_column(String(40), unique=True)
    postmortem_id: Mapped[str] = mapped_column(ForeignKey("postmortems.id"), index=True)
    description: Mapped[str] = mapped_column(Text)
    kind: Mapped[str] = mapped_column(String(20))  # mitigate | prevent | process | other
    owner: Mapped[str] = mapped_column(String(200))
    state: Mapped[str] = mapped_column(String(20), default="open")  # open | in progress | done
    due_date: Mapped[dt.date | None] = mapped_column(Date)
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)

    postmortem: Mapped[Postmortem] = relationship(back_populates="action_items")
