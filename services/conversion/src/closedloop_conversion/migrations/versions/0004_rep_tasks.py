"""rep_tasks: what a rep should do about a customer (win-back calls from retention)

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-30 22:45:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "rep_tasks",
        sa.Column("id", sa.String(length=26), nullable=False),
        sa.Column("tenant_id", sa.String(length=64), nullable=False),
        sa.Column("rep_id", sa.String(length=64), nullable=False),
        sa.Column("customer_id", sa.String(length=26), nullable=False),
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("source_id", sa.String(length=64), nullable=False),
        sa.Column("title", sa.String(length=300), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("due_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("completed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("outcome_note", sa.String(length=2000), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_rep_tasks")),
        sa.UniqueConstraint(
            "tenant_id", "kind", "source_id", name=op.f("uq_rep_tasks_tenant_id_kind_source_id")
        ),
    )
    op.create_index("ix_rep_tasks_rep", "rep_tasks", ["tenant_id", "rep_id", "status", "due_at"])


def downgrade() -> None:
    op.drop_index("ix_rep_tasks_rep", table_name="rep_tasks")
    op.drop_table("rep_tasks")
