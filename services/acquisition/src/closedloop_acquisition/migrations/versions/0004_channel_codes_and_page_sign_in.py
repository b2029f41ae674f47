"""channel codes (QR ticket, contact-me code) and the page's WeChat sign-in

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-30 16:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("channels", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("corp_id", sa.String(length=64), nullable=False, server_default="")
        )
        batch_op.add_column(
            sa.Column("user_ids", sa.JSON(), nullable=False, server_default=sa.text("'[]'"))
        )
        batch_op.add_column(
            sa.Column("skip_verify", sa.Boolean(), nullable=False, server_default=sa.false())
        )
        batch_op.add_column(sa.Column("code_ticket", sa.String(length=512), nullable=True))
        batch_op.add_column(sa.Column("code_url", sa.String(length=2000), nullable=True))
        batch_op.add_column(sa.Column("code_image_url", sa.String(length=2000), nullable=True))
        batch_op.add_column(sa.Column("code_config_id", sa.String(length=128), nullable=True))
        batch_op.add_column(
            sa.Column("code_note", sa.String(length=500), nullable=False, server_default="")
        )
        batch_op.add_column(sa.Column("deleted_at", sa.DateTime(timezone=True), nullable=True))
    with op.batch_alter_table("landing_pages", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("sign_in", sa.String(length=16), nullable=False, server_default="base")
        )
        batch_op.add_column(
            sa.Column("app_id", sa.String(length=64), nullable=False, server_default="")
        )


def downgrade() -> None:
    with op.batch_alter_table("landing_pages", schema=None) as batch_op:
        batch_op.drop_column("app_id")
        batch_op.drop_column("sign_in")
    with op.batch_alter_table("channels", schema=None) as batch_op:
        for column in (
            "deleted_at",
            "code_note",
            "code_config_id",
            "code_image_url",
            "code_url",
            "code_ticket",
            "skip_verify",
            "user_ids",
            "corp_id",
        ):
            batch_op.drop_column(column)
