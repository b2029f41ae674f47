"""Customer value: RFM quintiles within the tenant and the top 20% by revenue, in bulk SQL."""

from __future__ import annotations

from sqlalchemy import func, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from closedloop_retention.models import ActivityRow

_A = ActivityRow


async def recompute_rfm(session: AsyncSession, tenant: str) -> int:
    """Scores every buyer of the tenant 1..5 on recency, frequency and monetary value (quintiles,
    5 = best) and flags the top 20% by revenue; customers without orders score 0. Returns how
    many buyers' scores changed."""
    # Only rows whose scores change are written (in a steady state, few are).
    await session.execute(
        update(_A)
        .where(
            _A.tenant_id == tenant,
            or_(_A.order_count <= 0, _A.last_order_at.is_(None)),
            or_(_A.rfm_score != 0, _A.top_customer.is_(True)),
        )
        .values(rfm_r=0, rfm_f=0, rfm_m=0, rfm_score=0, top_customer=False)
        .execution_options(synchronize_session=False)
    )
    ranked = (
        select(
            _A.customer_id.label("cid"),
            func.ntile(5).over(order_by=(_A.last_order_at.asc(), _A.customer_id)).label("r"),
            func.ntile(5).over(order_by=(_A.order_count.asc(), _A.customer_id)).label("f"),
            func.ntile(5).over(order_by=(_A.revenue_minor.asc(), _A.customer_id)).label("m"),
            func.percent_rank()
            .over(order_by=(_A.revenue_minor.desc(), _A.customer_id))
            .label("pr"),
        )
        .where(_A.tenant_id == tenant, _A.order_count > 0, _A.last_order_at.is_not(None))
        .subquery()
    )
    top = ranked.c.pr < 0.2
    result = await session.execute(
        update(_A)
        .where(
            _A.tenant_id == tenant,
            _A.customer_id == ranked.c.cid,
            or_(
                _A.rfm_r != ranked.c.r,
                _A.rfm_f != ranked.c.f,
                _A.rfm_m != ranked.c.m,
                _A.top_customer != top,
            ),
        )
        .values(
            rfm_r=ranked.c.r,
            rfm_f=ranked.c.f,
            rfm_m=ranked.c.m,
            rfm_score=ranked.c.r * 100 + ranked.c.f * 10 + ranked.c.m,
            top_customer=top,
        )
        .execution_options(synchronize_session=False)
    )
    return int(getattr(result, "rowcount", 0) or 0)


async def top_customers(session: AsyncSession, tenant: str, limit: int) -> list[ActivityRow]:
    result = await session.scalars(
        select(_A)
        .where(_A.tenant_id == tenant, _A.top_customer.is_(True))
        .order_by(_A.revenue_minor.desc(), _A.customer_id)
        .limit(limit)
        .execution_options(populate_existing=True)
    )
    return list(result)
