"""The segment index on activity: (tenant, stage, last_order_at) carrying the other columns
segments filter on (INCLUDE, PostgreSQL), so a segment's count reads this index alone (an
index-only scan, no heap page) and only the stages and order-time range the segment names.
`ix_activity_tenant_stage` stays: deduplicated, it is the smallest index of activity, the one a
plain `count(*)` (and the bench's ceiling) reads.

The included columns: customer_id (the members), order_count, revenue_minor, first_order_at,
first_seen_at, unsubscribed, consent, deleted_rep, referrals_made, churn_risk, channel_id,
channel_kind, owner_rep_id. Not last_seen_at / last_interaction_at: an interaction that changes
only those stays a HOT update. A segment on a field outside the index reads the table as before.

With it, `ix_activity_tenant_revenue` (tenant, revenue_minor DESC, customer_id): the top list's
order, so the top 100 are the first entries of this index that are top customers (a walk of
~100 entries) instead of a sort of every customer's row. Orders already changed an indexed
column (last_order_at): this adds an index entry per order; a refund that changes only the
revenue is no longer a HOT update.

Plain CREATE INDEX (in the migration's transaction): ~10 s and ~4 s per 1M customers on the
2-core machine, activity's writes wait meanwhile (IF NOT EXISTS: an operator may build the same
indexes CONCURRENTLY first). SQLite: the key columns only (no INCLUDE).

Revision ID: 0020_segment5
Revises: 0019_rfm5
Create Date: 2026-12-01 14:10:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0020_segment5"
down_revision: str | None = "0019_rfm5"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

INCLUDED = [
    "customer_id",
    "order_count",
    "revenue_minor",
    "first_order_at",
    "first_seen_at",
    "unsubscribed",
    "consent",
    "deleted_rep",
    "referrals_made",
    "churn_risk",
    "channel_id",
    "channel_kind",
    "owner_rep_id",
]


def upgrade() -> None:
    op.create_index(
        "ix_activity_tenant_segment",
        "activity",
        ["tenant_id", "stage", "last_order_at"],
        postgresql_include=INCLUDED,
        if_not_exists=True,  # an operator may have built it CONCURRENTLY first (operations.md)
    )
    op.create_index(
        "ix_activity_tenant_revenue",
        "activity",
        ["tenant_id", sa.text("revenue_minor DESC"), "customer_id"],
        if_not_exists=True,
    )


def downgrade() -> None:
    op.drop_index("ix_activity_tenant_revenue", table_name="activity", if_exists=True)
    op.drop_index("ix_activity_tenant_segment", table_name="activity", if_exists=True)
