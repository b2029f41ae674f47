"""reward ledger states: held -> pending, revoked -> voided (granted_at tells a clawback)

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-30 22:30:00.000000
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.execute("UPDATE rewards SET status = 'pending' WHERE status = 'held'")
    op.execute("UPDATE rewards SET status = 'voided' WHERE status = 'revoked'")


def downgrade() -> None:
    op.execute(
        "UPDATE rewards SET status = 'revoked' WHERE status = 'voided' AND granted_at IS NOT NULL"
    )
    op.execute(
        "UPDATE rewards SET status = 'held' WHERE status IN ('pending', 'flagged', 'approved')"
    )
