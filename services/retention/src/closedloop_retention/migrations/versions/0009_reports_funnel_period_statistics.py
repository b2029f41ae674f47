"""funnel_steps: statistics on GetFunnel's period expressions (PostgreSQL only)

Without them the planner guesses a group per row for `GROUP BY date_trunc(<grain>, at AT TIME
ZONE 'UTC'), step` (hundreds of thousands of groups on a 90-day range instead of about a
hundred) and so never aggregates in parallel; with them the step counts are a parallel hash
aggregate, like the `count(*)` they are measured against (bench/funnel.py).

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-01 04:00:00.000000
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# The expressions exactly as funnel/repository.py writes them (_PG_PERIOD).
GRAINS = ("day", "week", "month")


def upgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    for grain in GRAINS:
        op.execute(
            f"CREATE STATISTICS IF NOT EXISTS funnel_steps_{grain}_step (ndistinct) "
            f"ON (date_trunc('{grain}', at AT TIME ZONE 'UTC')), step FROM funnel_steps"
        )
    op.execute("ANALYZE funnel_steps")


def downgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    for grain in GRAINS:
        op.execute(f"DROP STATISTICS IF EXISTS funnel_steps_{grain}_step")
