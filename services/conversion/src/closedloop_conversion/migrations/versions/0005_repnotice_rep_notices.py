"""rep_notices: messages to reps (a new task, a lead assigned) handed to the gateway, and
whether the rep of a task was told

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-01 03:30:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "rep_notices",
        sa.Column("id", sa.String(length=26), nullable=False),
        sa.Column("tenant_id", sa.String(length=64), nullable=False),
        sa.Column("idempotency_key", sa.String(length=200), nullable=False),
        sa.Column("rep_id", sa.String(length=64), nullable=False),
        sa.Column("task_id", sa.String(length=26), nullable=True),
        sa.Column("lead_id", sa.String(length=64), nullable=True),
        sa.Column("corp_id", sa.String(length=64), nullable=False),
        sa.Column("userid", sa.String(length=128), nullable=False),
        sa.Column("text", sa.String(length=2000), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("detail", sa.String(length=300), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("next_attempt_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("settled_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_rep_notices")),
        sa.UniqueConstraint(
            "tenant_id", "idempotency_key", name=op.f("uq_rep_notices_tenant_id_idempotency_key")
        ),
    )
    op.create_index("ix_rep_notices_due", "rep_notices", ["status", "next_attempt_at"])
    with op.batch_alter_table("rep_tasks") as batch:
        batch.add_column(
            sa.Column("rep_notice", sa.String(length=16), nullable=False, server_default="")
        )
        batch.add_column(
            sa.Column("rep_notice_detail", sa.String(length=300), nullable=False, server_default="")
        )


def downgrade() -> None:
    with op.batch_alter_table("rep_tasks") as batch:
        batch.drop_column("rep_notice_detail")
        batch.drop_column("rep_notice")
    op.drop_index("ix_rep_notices_due", table_name="rep_notices")
    op.drop_table("rep_notices")
