"""dashboard: feature flags, and the order indexes the dashboard queries need

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-27

Indexes, each for a dashboard query:
- ix_orders_failure_reason_seq: /orders?failure_reason=... newest first (seq) without a scan;
- ix_orders_finished_at: the shift view's throughput and p95 charts read orders finished in the
  last 24 h (a range on finished_at);
- ix_saga_step_attempts_order_seq: the order timeline reads one order's attempts in order.
"""
import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        "feature_flags",
        sa.Column("seq", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("name", sa.String(length=80), nullable=False),
        sa.Column("type", sa.String(length=20), nullable=False),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("enabled", sa.Boolean(), nullable=False),
        sa.Column("rollout_percentage", sa.Integer(), nullable=False),
        sa.Column("overrides", sa.JSON(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_by", sa.String(length=200), nullable=True),
        sa.PrimaryKeyConstraint("seq", name=op.f("pk_feature_flags")),
        sa.UniqueConstraint("name", name=op.f("uq_feature_flags_name")),
    )
    op.create_index("ix_orders_failure_reason_seq", "orders", ["failure_reason", "seq"])
    op.create_index("ix_orders_finished_at", "orders", ["finished_at"])
    op.create_index(
        "ix_saga_step_attempts_order_seq", "saga_step_attempts", ["order_id", "seq"]
    )


def downgrade():
    op.drop_index("ix_saga_step_attempts_order_seq", table_name="saga_step_attempts")
    op.drop_index("ix_orders_finished_at", table_name="orders")
    op.drop_index("ix_orders_failure_reason_seq", table_name="orders")
    op.drop_table("feature_flags")
