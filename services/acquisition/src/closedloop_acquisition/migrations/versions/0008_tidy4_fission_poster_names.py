"""Fission poster channels named after their participation, not their customer

A poster's channel was named `fission poster of <customer id>`, and the name stayed after the
customer was forgotten (the channel does: its touches still count). It is now
`fission poster <participation id>`, taken from the channel's scene (`fx-<id>`), which names no
customer and links to nobody once the participation is erased.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-01 11:00:00.000000
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # substr/upper/|| read the same on PostgreSQL and SQLite.
    op.execute(
        "UPDATE channels SET name = 'fission poster ' || upper(substr(scene, 4)) "
        "WHERE name LIKE 'fission poster of %' AND scene LIKE 'fx-%'"
    )


def downgrade() -> None:
    pass  # the customer ids are not brought back
