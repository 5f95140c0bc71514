"""audit log: TRUNCATE refused too

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-07

Row triggers (0002) stop UPDATE and DELETE, but TRUNCATE fires no row triggers: a statement
trigger closes that way round the append-only rule. PostgreSQL only (SQLite has no TRUNCATE).
"""
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade():
    if op.get_bind().dialect.name == "postgresql":
        op.execute(
            "CREATE TRIGGER audit_log_no_truncate BEFORE TRUNCATE ON audit_log "
            "FOR EACH STATEMENT EXECUTE FUNCTION audit_log_append_only()"
        )


def downgrade():
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP TRIGGER IF EXISTS audit_log_no_truncate ON audit_log")
