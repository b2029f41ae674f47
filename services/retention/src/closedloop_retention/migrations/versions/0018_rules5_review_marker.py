"""A rules change leaves a marker on the tenant's rules row instead of reviewing every customer
in the request: the background sweep reviews them in batches, each its own transaction, and
keeps its keyset position beside the marker.

Revision ID: 0018
Revises: 0017
Create Date: 2026-12-01 12:00:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0018"
down_revision: str | None = "0017"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("tenant_rules") as batch:
        batch.add_column(sa.Column("review_wanted_at", sa.DateTime(timezone=True), nullable=True))
        batch.add_column(
            sa.Column("review_after", sa.String(26), nullable=False, server_default="")
        )


def downgrade() -> None:
    with op.batch_alter_table("tenant_rules") as batch:
        batch.drop_column("review_after")
        batch.drop_column("review_wanted_at")
