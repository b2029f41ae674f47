"""a ledger entry's client idempotency key (redeem:, manual:) expires (NULL once older than the
key retention), found through a partial index of the entries that still hold one

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-01 03:40:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0010"
down_revision: str | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

KEPT = sa.text("idempotency_key IS NOT NULL")


def upgrade() -> None:
    with op.batch_alter_table("points_ledger", schema=None) as batch_op:
        batch_op.alter_column("idempotency_key", existing_type=sa.String(200), nullable=True)
    op.create_index(
        "ix_points_ledger_key_kept",
        "points_ledger",
        ["created_at"],
        postgresql_where=KEPT,
        sqlite_where=KEPT,
    )


def downgrade() -> None:
    op.drop_index("ix_points_ledger_key_kept", table_name="points_ledger")
    op.execute(
        "UPDATE points_ledger SET idempotency_key = 'expired:' || id WHERE idempotency_key IS NULL"
    )
    with op.batch_alter_table("points_ledger", schema=None) as batch_op:
        batch_op.alter_column("idempotency_key", existing_type=sa.String(200), nullable=False)
