"""customer_aliases: merged-away and forgotten customer ids, so late events count for the live one

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-01 22:00:00.000000
"""

from collections.abc import Sequence

from loopkit.migrations import create_customer_aliases, drop_customer_aliases

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    create_customer_aliases()


def downgrade() -> None:
    drop_customer_aliases()
