"""knowledge: KB articles with full-text search, runbooks and their runs, postmortems

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-26

"""
import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

# Title and tags weigh most, then the issue, then the resolution (PostgreSQL ranks by weight).
PG_SEARCH_VECTOR = (
    "setweight(to_tsvector('english', coalesce(title, '')), 'A') || "
    "setweight(to_tsvector('english', coalesce(tags, '')), 'A') || "
    "setweight(to_tsvector('english', coalesce(issue, '')), 'B') || "
    "setweight(to_tsvector('english', coalesce(resolution, '')), 'C')"
)
FTS_COLUMNS = "title, tags, issue, resolution"


def _seq():
    return sa.Column("seq", sa.Integer(), autoincrement=True, nullable=False)


def _ts(name, nullable=False):
    return sa.Column(name, sa.DateTime(timezone=True), nullable=nullable)


def upgrade():
    op.create_table(
        "kb_articles",
        _seq(),
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("title", sa.String(length=200), nullable=False),
        sa.Column("issue", sa.Text(), nullable=False),
        sa.Column("resolution", sa.Text(), nullable=False),
        sa.Column("tags", sa.String(length=500), nullable=False),
        sa.Column("created_by", sa.String(length=200), nullable=False),
        sa.Column("updated_by", sa.String(length=200), nullable=False),
        _ts("created_at"),
        _ts("updated_at"),
        sa.PrimaryKeyConstraint("seq", name=op.f("pk_kb_articles")),
        sa.UniqueConstraint("id", name=op.f("uq_kb_articles_id")),
    )
    op.create_index(op.f("ix_kb_articles_updated_at"), "kb_articles", ["updated_at"])
    _create_search_index()

    op.create_table(
        "runbooks",
        _seq(),
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("slug", sa.String(length=80), nullable=False),
        sa.Column("title", sa.String(length=200), nullable=False),
        sa.Column("summary", sa.Text(), nullable=False),
        _ts("updated_at"),
        sa.PrimaryKeyConstraint("seq", name=op.f("pk_runbooks")),
        sa.UniqueConstraint("id", name=op.f("uq_runbooks_id")),
        sa.UniqueConstraint("slug", name=op.f("uq_runbooks_slug")),
    )
    op.create_table(
        "runbook_steps",
        _seq(),
        sa.Column("runbook_id", sa.String(length=40), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("title", sa.String(length=200), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("command", sa.Text(), nullable=True),
        sa.Column("link_path", sa.String(length=300), nullable=True),
        sa.Column("link_label", sa.String(length=120), nullable=True),
        sa.ForeignKeyConstraint(
            ["runbook_id"], ["runbooks.id"], name=op.f("fk_runbook_steps_runbook_id_runbooks")
        ),
        sa.PrimaryKeyConstraint("seq", name=op.f("pk_runbook_steps")),
        sa.UniqueConstraint("runbook_id", "position", name=op.f("uq_runbook_steps_runbook_id")),
    )
    op.create_table(
        "runbook_runs",
        _seq(),
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("runbook_id", sa.String(length=40), nullable=False),
        sa.Column("started_by", sa.String(length=200), nullable=False),
        _ts("started_at"),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.Column("finished_by", sa.String(length=200), nullable=True),
        _ts("finished_at", nullable=True),
        sa.Column("outcome", sa.String(length=20), nullable=True),
        sa.Column("notes", sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(
            ["runbook_id"], ["runbooks.id"], name=op.f("fk_runbook_runs_runbook_id_runbooks")
        ),
        sa.PrimaryKeyConstraint("seq", name=op.f("pk_runbook_runs")),
        sa.UniqueConstraint("id", name=op.f("uq_runbook_runs_id")),
    )
    op.create_index("ix_runbook_runs_runbook_seq", "runbook_runs", ["runbook_id", "seq"])
    op.create_table(
        "runbook_run_steps",
        _seq(),
        sa.Column("run_id", sa.String(length=40), nullable=False),
        sa.Column("step_position", sa.Integer(), nullable=False),
        sa.Column("done_by", sa.String(length=200), nullable=False),
        _ts("done_at"),
        sa.Column("note", sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(
            ["run_id"], ["runbook_runs.id"], name=op.f("fk_runbook_run_steps_run_id_runbook_runs")
        ),
        sa.PrimaryKeyConstraint("seq", name=op.f("pk_runbook_run_steps")),
        sa.UniqueConstraint("run_id", "step_position", name=op.f("uq_runbook_run_steps_run_id")),
    )
    op.create_table(
        "postmortems",
        _seq(),
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("title", sa.String(length=200), nullable=False),
        sa.Column("incident_date", sa.Date(), nullable=False),
        sa.Column("status", sa.String(length=20), nullable=False),
        *[
            sa.Column(name, sa.Text(), nullable=False)
            for name in (
                "summary", "impact", "timeline", "root_cause", "trigger", "resolution",
                "detection", "went_well", "went_wrong", "got_lucky",
            )
        ],
        sa.Column("created_by", sa.String(length=200), nullable=False),
        _ts("created_at"),
        _ts("updated_at"),
        sa.PrimaryKeyConstraint("seq", name=op.f("pk_postmortems")),
        sa.UniqueConstraint("id", name=op.f("uq_postmortems_id")),
    )
    op.create_table(
        "postmortem_action_items",
        _seq(),
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("postmortem_id", sa.String(length=40), nullable=False),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("kind", sa.String(length=20), nullable=False),
        sa.Column("owner", sa.String(length=200), nullable=False),
        sa.Column("state", sa.String(length=20), nullable=False),
        sa.Column("due_date", sa.Date(), nullable=True),
        _ts("updated_at"),
        sa.ForeignKeyConstraint(
            ["postmortem_id"], ["postmortems.id"],
            name=op.f("fk_postmortem_action_items_postmortem_id_postmortems"),
        ),
        sa.PrimaryKeyConstraint("seq", name=op.f("pk_postmortem_action_items")),
        sa.UniqueConstraint("id", name=op.f("uq_postmortem_action_items_id")),
    )
    op.create_index(
        op.f("ix_postmortem_action_items_postmortem_id"),
        "postmortem_action_items",
        ["postmortem_id"],
    )


def _create_search_index():
    if op.get_bind().dialect.name == "postgresql":
        # A stored generated column: kept current by PostgreSQL on every write, indexed with GIN.
        op.execute(
            f"ALTER TABLE kb_articles ADD COLUMN search_vector tsvector "
            f"GENERATED ALWAYS AS ({PG_SEARCH_VECTOR}) STORED"
        )
        op.execute("CREATE INDEX ix_kb_articles_search ON kb_articles USING GIN (search_vector)")
        return
    # SQLite: an external-content FTS5 table over kb_articles, kept in sync by triggers.
    op.execute(
        f"CREATE VIRTUAL TABLE kb_articles_fts USING fts5({FTS_COLUMNS}, "
        "content='kb_articles', content_rowid='seq', tokenize='porter unicode61')"
    )
    # Every indexed (stemmed) term with its row: prefix search reads it, since FTS5 would stem a
    # prefix too ("pay"* becomes "pai"* and misses "payment").
    op.execute("CREATE VIRTUAL TABLE kb_articles_fts_terms USING fts5vocab(kb_articles_fts, 'instance')")
    new_values = "new.title, new.tags, new.issue, new.resolution"
    old_values = "old.title, old.tags, old.issue, old.resolution"
    op.execute(
        "CREATE TRIGGER kb_articles_fts_insert AFTER INSERT ON kb_articles BEGIN "
        f"INSERT INTO kb_articles_fts(rowid, {FTS_COLUMNS}) VALUES (new.seq, {new_values}); END"
    )
    op.execute(
        "CREATE TRIGGER kb_articles_fts_delete AFTER DELETE ON kb_articles BEGIN "
        f"INSERT INTO kb_articles_fts(kb_articles_fts, rowid, {FTS_COLUMNS}) "
        f"VALUES ('delete', old.seq, {old_values}); END"
    )
    op.execute(
        "CREATE TRIGGER kb_articles_fts_update AFTER UPDATE ON kb_articles BEGIN "
        f"INSERT INTO kb_articles_fts(kb_articles_fts, rowid, {FTS_COLUMNS}) "
        f"VALUES ('delete', old.seq, {old_values}); "
        f"INSERT INTO kb_articles_fts(rowid, {FTS_COLUMNS}) VALUES (new.seq, {new_values}); END"
    )


def downgrade():
    op.drop_table("postmortem_action_items")
    op.drop_table("postmortems")
    op.drop_table("runbook_run_steps")
    op.drop_table("runbook_runs")
    op.drop_table("runbook_steps")
    op.drop_table("runbooks")
    if op.get_bind().dialect.name != "postgresql":
        for name in ("insert", "delete", "update"):
            op.execute(f"DROP TRIGGER IF EXISTS kb_articles_fts_{name}")
        op.execute("DROP TABLE IF EXISTS kb_articles_fts_terms")
        op.execute("DROP TABLE IF EXISTS kb_articles_fts")
    op.drop_table("kb_articles")
