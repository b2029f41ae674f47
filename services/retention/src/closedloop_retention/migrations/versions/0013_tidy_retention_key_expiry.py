"""the idempotency keys of coupons, broadcasts, win-back offers and customer notices expire (NULL
once older than the key retention; a referral reward's coupon key and an unfinished notice's key
stay), found through partial indexes of the rows that still hold one

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-01 06:50:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0013"
down_revision: str | None = "0012"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

KEPT = sa.text("idempotency_key IS NOT NULL")
# table -> the time its key expires after
TABLES = {
    "coupons": "issued_at",
    "broadcasts": "created_at",
    "win_back_offers": "created_at",
    "customer_notices": "created_at",
}


def upgrade() -> None:
    for table, at in TABLES.items():
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.alter_column("idempotency_key", existing_type=sa.String(200), nullable=True)
        op.create_index(
            f"ix_{table}_key_kept", table, [at], postgresql_where=KEPT, sqlite_where=KEPT
        )


def downgrade() -> None:
    for table in TABLES:
        op.drop_index(f"ix_{table}_key_kept", table_name=table)
        op.execute(
            f"UPDATE {table} SET idempotency_key = 'expired:' || id WHERE idempotency_key IS NULL"
        )
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.alter_column("idempotency_key", existing_type=sa.String(200), nullable=False)
