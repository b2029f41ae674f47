"""customer_value at fillfactor 50 on PostgreSQL, rewritten once so the existing rows take it:
a rescore that changes every buyer's scores (the first run) then finds room for each new row
version on its own page, so every update is HOT (no primary-key entry, a third of the WAL)

Revision ID: 0016
Revises: 0015
Create Date: 2026-12-01 06:30:00.000000
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0016"
down_revision: str | None = "0015"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _fillfactor(percent: int) -> None:
    if op.get_bind().dialect.name != "postgresql":
        return  # SQLite has no fillfactor
    op.execute(f"ALTER TABLE customer_value SET (fillfactor = {percent})")
    # The rewrite (in this transaction, unlike VACUUM FULL) leaves every page at the new
    # fillfactor; it holds an exclusive lock on the narrow table while it runs (~2 s per 1M rows).
    op.execute("CLUSTER customer_value USING pk_customer_value")
    op.execute("ALTER TABLE customer_value SET WITHOUT CLUSTER")


def upgrade() -> None:
    _fillfactor(50)


def downgrade() -> None:
    _fillfactor(80)
