"""customer_moves: what each customer.merged re-pointed, so customer.unmerged gives it back

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-01 04:00:00.000000
"""

from collections.abc import Sequence

from loopkit.migrations import create_customer_moves, drop_customer_moves

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    create_customer_moves()


def downgrade() -> None:
    drop_customer_moves()
