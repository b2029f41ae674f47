"""wechat_inbox.trace_context: the callback's trace, continued by the worker

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-30 16:15:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("wechat_inbox", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("trace_context", sa.JSON(), nullable=False, server_default=sa.text("'{}'"))
        )


def downgrade() -> None:
    with op.batch_alter_table("wechat_inbox", schema=None) as batch_op:
        batch_op.drop_column("trace_context")
