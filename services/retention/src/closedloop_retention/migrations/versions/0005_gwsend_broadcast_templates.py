"""broadcasts carry an official-account template message for recipients outside WeChat's
48-hour customer-service window (broadcasts.wechat_template_id, wechat_template_data)

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
    with op.batch_alter_table("broadcasts", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("wechat_template_id", sa.String(length=64), server_default="", nullable=False)
        )
        batch_op.add_column(
            sa.Column("wechat_template_data", sa.JSON(), server_default="{}", nullable=False)
        )


def downgrade() -> None:
    with op.batch_alter_table("broadcasts", schema=None) as batch_op:
        batch_op.drop_column("wechat_template_data")
        batch_op.drop_column("wechat_template_id")
