"""observability: order indexes found missing by EXPLAIN ANALYZE on 100,000 orders

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-27

`python -m benchmarks --only bench_order_queries` prints the plans:
- ix_orders_merchant_status_seq: a merchant's orders filtered by status, newest first. Without it
  PostgreSQL walks the primary key backwards and filters, reading the whole table when the merchant
  has few or no orders in that status (36 ms for 0 rows at 100k orders; now an index range).
- ix_orders_status_created: the SLO scan for orders still unfinished after 5 s (status IN
  (pending, processing) and created_at in the last 30 days) read every order of the 30 days
  through ix_orders_created_at; now it reads only the unfinished ones.
"""
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade():
    op.create_index(
        "ix_orders_merchant_status_seq", "orders", ["merchant_id", "status", "seq"]
    )
    op.create_index("ix_orders_status_created", "orders", ["status", "created_at"])


def downgrade():
    op.drop_index("ix_orders_status_created", table_name="orders")
    op.drop_index("ix_orders_merchant_status_seq", table_name="orders")
