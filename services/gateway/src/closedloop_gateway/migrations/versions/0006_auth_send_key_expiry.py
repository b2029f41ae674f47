"""a send's idempotency key expires (NULL once older than the key retention), found through a
partial index of the sends that still hold one

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-01 03:40:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

KEPT = sa.text("idempotency_key IS NOT NULL")


def upgrade() -> None:
    with op.batch_alter_table("sends", schema=None) as batch_op:
        batch_op.alter_column("idempotency_key", existing_type=sa.String(200), nullable=True)
    op.create_index(
        "ix_sends_key_kept",
        "sends",
        ["created_at"],
        postgresql_where=KEPT,
        sqlite_where=KEPT,
    )


def downgrade() -> None:
    op.drop_index("ix_sends_key_kept", table_name="sends")
    # Expired keys get a placeholder unique per send, so the column can be required again.
    op.execute("UPDATE sends SET idempotency_key = 'expired:' || id WHERE idempotency_key IS NULL")
    with op.batch_alter_table("sends", schema=None) as batch_op:
        batch_op.alter_column("idempotency_key", existing_type=sa.String(200), nullable=False)
