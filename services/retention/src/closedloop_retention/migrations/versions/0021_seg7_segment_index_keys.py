"""The segment index rebuilt with every column as a key column and without churn_risk
(PostgreSQL), so the lifecycle reviews stop ageing it.

Every review rewrites next_review_at (indexed), so no review is a HOT update: each adds a new
entry for its row to every index of activity. A B-tree whose entries for the same row are equal
(every key column the same) keeps those versions in one posting list (deduplication) instead of
splitting pages, as the primary key does; an index with INCLUDE columns, or with a float8 key
column (churn_risk: 0.0 and -0.0 are equal but not the same bytes), cannot deduplicate at all.
0020_segment5's index (INCLUDE, churn_risk among the included) grew 3.5x its built size in 90
days of reviews at 100k customers and kept growing; this one stays near the primary key's 2x
(bench/README.md, "seg7 (stop 25)"). A review that leaves the stage as it was now leaves the
row's segment-index entry equal to the last one.

churn_risk is no longer in the index: a segment on the churn risk reads the table for it (the
rows the index's key conditions leave), as a segment on last_seen_at does. Column order: the
three columns a segment ranges on first, as before; customer_id next.

Plain DROP + CREATE INDEX in the migration's transaction: ~10 s per 1M customers on the 2-core
machine, activity's writes and segments wait meanwhile; skipped when the index already has this
shape (an operator built it CONCURRENTLY first, docs/operations.md). SQLite keeps
0020's key columns (no INCLUDE there, nothing to change).

Revision ID: 0021_seg7
Revises: 0020_segment5
Create Date: 2026-12-01 20:30:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0021_seg7"
down_revision: str | None = "0020_segment5"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

KEYS = [
    "tenant_id",
    "stage",
    "last_order_at",
    "customer_id",
    "order_count",
    "revenue_minor",
    "first_order_at",
    "first_seen_at",
    "unsubscribed",
    "consent",
    "deleted_rep",
    "referrals_made",
    "channel_id",
    "channel_kind",
    "owner_rep_id",
]
# 0020_segment5's included columns, for the downgrade.
INCLUDED_0020 = [*KEYS[3:12], "churn_risk", *KEYS[12:]]


def upgrade() -> None:
    bind = op.get_bind()
    if bind.dialect.name != "postgresql":
        return
    # An operator may have built this shape CONCURRENTLY and renamed it first (operations.md).
    shape = bind.execute(
        sa.text(
            "SELECT i.indnatts, i.indnkeyatts FROM pg_index i"
            " JOIN pg_class c ON c.oid = i.indexrelid"
            " WHERE c.relname = 'ix_activity_tenant_segment' AND pg_table_is_visible(c.oid)"
        )
    ).first()
    if shape is not None and tuple(shape) == (len(KEYS), len(KEYS)):
        return
    op.drop_index("ix_activity_tenant_segment", table_name="activity", if_exists=True)
    op.create_index("ix_activity_tenant_segment", "activity", KEYS)


def downgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    op.drop_index("ix_activity_tenant_segment", table_name="activity", if_exists=True)
    op.create_index(
        "ix_activity_tenant_segment",
        "activity",
        KEYS[:3],
        postgresql_include=INCLUDED_0020,
    )
