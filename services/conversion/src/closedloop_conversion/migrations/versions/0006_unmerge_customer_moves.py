"""customer_moves: what each customer.merged re-pointed, so customer.unmerged gives it back

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-01 03:40:00.000000
"""

from collections.abc import Sequence

from loopkit.migrations import create_customer_moves, drop_customer_moves

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    create_customer_moves()


def downgrade() -> None:
    drop_customer_moves()
