"""Leads indexed by the referrer inside their attribution

A merge moves the referrer of others' leads to the survivor, a forget unties it: both look leads
up by `attribution.referrer_customer_id`, a key inside a JSON column, which without this index
read every lead of the tenant. The expression is spelled as `leads.repository.referrer_of` spells
it (a literal key), so the planner matches it; each database has its own JSON operator.

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-01 20:30:00.000000
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

REFERRER = {
    "postgresql": "(attribution ->> 'referrer_customer_id')",
    "sqlite": "json_extract(attribution, '$.referrer_customer_id')",
}


def upgrade() -> None:
    expression = REFERRER[op.get_bind().dialect.name]
    op.execute(f"CREATE INDEX ix_leads_tenant_referrer ON leads (tenant_id, {expression})")


def downgrade() -> None:
    op.execute("DROP INDEX ix_leads_tenant_referrer")
