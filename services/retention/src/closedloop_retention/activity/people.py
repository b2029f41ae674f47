"""customer.merged and customer.forgotten: one person's rows move or go, nothing counted twice."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import Table, delete, select
from sqlalchemy.ext.asyncio import AsyncSession

from closedloop_retention.activity.service import ActivityService
from closedloop_retention.clock import utc, utc_or_none
from closedloop_retention.models import (
    ActivityRow,
    CouponRow,
    LedgerRow,
    LoyaltyAccountRow,
    OrderItemRow,
    OrderRow,
    RecipientRow,
    StageChangeRow,
    TagRow,
)
from loopkit.customer_rows import repoint_customer


def _table(model: type[object]) -> Table:
    return model.__table__  # type: ignore[attr-defined,no-any-return]


def _earliest(a: datetime | None, b: datetime | None) -> datetime | None:
    a, b = utc_or_none(a), utc_or_none(b)
    if a is None or b is None:
        return a or b
    return min(a, b)


def _latest(a: datetime | None, b: datetime | None) -> datetime | None:
    a, b = utc_or_none(a), utc_or_none(b)
    if a is None or b is None:
        return a or b
    return max(a, b)


async def merge(
    session: AsyncSession,
    activity: ActivityService,
    tenant: str,
    survivor_id: str,
    merged_id: str,
    *,
    now: datetime,
) -> None:
    if survivor_id == merged_id:
        return
    gone = await session.get(ActivityRow, (tenant, merged_id))
    keep = await session.get(ActivityRow, (tenant, survivor_id))
    if gone is not None and keep is not None:
        keep.first_seen_at = _earliest(keep.first_seen_at, gone.first_seen_at) or keep.first_seen_at
        keep.last_seen_at = _latest(keep.last_seen_at, gone.last_seen_at) or keep.last_seen_at
        keep.order_count += gone.order_count
        keep.revenue_minor += gone.revenue_minor
        keep.first_order_at = _earliest(keep.first_order_at, gone.first_order_at)
        keep.last_order_at = _latest(keep.last_order_at, gone.last_order_at)
        keep.last_interaction_at = _latest(keep.last_interaction_at, gone.last_interaction_at)
        keep.referrals_made += gone.referrals_made
        keep.unsubscribed = keep.unsubscribed or gone.unsubscribed
        keep.deleted_rep = keep.deleted_rep or gone.deleted_rep
        keep.consent = keep.consent or gone.consent
        if not keep.channel_id:
            keep.channel_id, keep.channel_kind = gone.channel_id, gone.channel_kind
        if not keep.owner_rep_id:
            keep.owner_rep_id = gone.owner_rep_id
        if not keep.contact_value:
            keep.contact_kind = gone.contact_kind
            keep.contact_scope = gone.contact_scope
            keep.contact_value = gone.contact_value
        a, b = keep.active_hours or [0] * 24, gone.active_hours or [0] * 24
        keep.active_hours = [x + y for x, y in zip(a, b, strict=True)]
        await session.delete(gone)
    elif gone is not None:
        gone.customer_id = survivor_id
    await session.flush()

    # Loyalty: balances add up, the ledger rows follow (their sum stays the balance).
    gone_acct = await session.get(LoyaltyAccountRow, (tenant, merged_id))
    if gone_acct is not None:
        keep_acct = await session.get(LoyaltyAccountRow, (tenant, survivor_id))
        if keep_acct is None:
            gone_acct.customer_id = survivor_id
        else:
            keep_acct.balance += gone_acct.balance
            keep_acct.lifetime_points += gone_acct.lifetime_points
            await session.delete(gone_acct)
        await session.flush()

    # Rows keyed by the customer: drop the merged one's duplicates first.
    keep_tags = select(TagRow.tag).where(
        TagRow.tenant_id == tenant, TagRow.customer_id == survivor_id
    )
    await session.execute(
        delete(TagRow).where(
            TagRow.tenant_id == tenant, TagRow.customer_id == merged_id, TagRow.tag.in_(keep_tags)
        )
    )
    keep_broadcasts = select(RecipientRow.broadcast_id).where(
        RecipientRow.tenant_id == tenant, RecipientRow.customer_id == survivor_id
    )
    await session.execute(
        delete(RecipientRow).where(
            RecipientRow.tenant_id == tenant,
            RecipientRow.customer_id == merged_id,
            RecipientRow.broadcast_id.in_(keep_broadcasts),
        )
    )
    models = (OrderRow, OrderItemRow, StageChangeRow, LedgerRow, CouponRow, TagRow, RecipientRow)
    await repoint_customer(
        session,
        [(model, "customer_id") for model in models],
        tenant_id=tenant,
        from_id=merged_id,
        to_id=survivor_id,
    )
    session.expire_all()
    survivor = await session.get(ActivityRow, (tenant, survivor_id))
    if survivor is not None:
        await activity.recompute(session, survivor, utc(now))


async def forget(session: AsyncSession, tenant: str, customer_ids: Sequence[str]) -> None:
    ids = list(customer_ids)
    for model in (
        ActivityRow,
        TagRow,
        StageChangeRow,
        OrderRow,
        OrderItemRow,
        LedgerRow,
        LoyaltyAccountRow,
        CouponRow,
        RecipientRow,
    ):
        table = _table(model)
        await session.execute(
            delete(table).where(table.c.tenant_id == tenant, table.c.customer_id.in_(ids))
        )
