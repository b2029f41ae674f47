"""customer.merged, .unmerged and .forgotten: one person's rows move, come back or go, nothing
counted twice. Each concept's tables change through that concept's repository.

A merge logs what it moves (`loopkit.customer_rows`): each concept moves its own rows (tags,
orders, ledger, coupons, broadcast recipients, win-back offers, opt-outs, fission rewards,
notices); the merged customer's activity row and loyalty account are set aside when the
survivor has its own (the survivor's absorb their figures), and the merged id becomes an alias
of the survivor, so an event still naming it (an order paid, a fission goal reached) lands on
the survivor. An unmerge gives the logged rows back, drops the alias, counts each side's orders
and sums each side's ledger again (balance, lifetime points, hence the
tier), and re-assesses both. What the survivor got after the merge stays with the survivor."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession

from closedloop_retention.activity.repository import ActivityRepository
from closedloop_retention.activity.service import ActivityService
from closedloop_retention.broadcasts.repository import BroadcastRepository
from closedloop_retention.clock import utc, utc_or_none
from closedloop_retention.consent.service import ConsentService
from closedloop_retention.fission.service import FissionService
from closedloop_retention.loyalty.repository import LoyaltyRepository
from closedloop_retention.loyalty.service import EARNING_SOURCES
from closedloop_retention.models import ActivityRow, Base, LoyaltyAccountRow
from closedloop_retention.notices.service import NoticeService
from closedloop_retention.winback.service import WinBackService
from loopkit.customer_rows import forget_moves, give_back_customer, record_moves, set_aside


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


class People:
    def __init__(
        self,
        activity: ActivityService,
        activity_rows: ActivityRepository,
        loyalty_rows: LoyaltyRepository,
        broadcast_rows: BroadcastRepository,
        *,
        consent: ConsentService,
        offers: WinBackService,
        fission: FissionService,
        notices: NoticeService,
    ) -> None:
        self._activity = activity
        self._rows = activity_rows
        self._loyalty = loyalty_rows
        self._broadcasts = broadcast_rows
        self._consent = consent
        self._offers = offers
        self._fission = fission
        self._notices = notices

    async def survivor_of(self, session: AsyncSession, tenant: str, customer_id: str) -> str:
        """Who an event naming `customer_id` is about now (the survivor of a merge it went in)."""
        return await self._rows.survivor_of(session, tenant, customer_id)

    async def merge(
        self,
        session: AsyncSession,
        tenant: str,
        survivor_id: str,
        merged_id: str,
        *,
        now: datetime,
        merge_id: str = "",
    ) -> None:
        if survivor_id == merged_id:
            return
        log = {
            "tenant_id": tenant,
            "merge_id": merge_id,
            "from_id": merged_id,
            "to_id": survivor_id,
        }
        gone = await self._rows.find(session, tenant, merged_id)
        keep = await self._rows.find(session, tenant, survivor_id)
        if gone is not None and keep is not None:
            await set_aside(session, ActivityRow, "customer_id", [gone], **log)
            _combine(keep, gone)
            await self._rows.drop(session, gone)
        elif gone is not None:
            gone.customer_id = survivor_id
            await record_moves(session, ActivityRow, "customer_id", [()], **log)
        await session.flush()

        # Loyalty: balances add up, the ledger rows follow (their sum stays the balance).
        gone_acct = await self._loyalty.account(session, tenant, merged_id)
        if gone_acct is not None:
            keep_acct = await self._loyalty.account(session, tenant, survivor_id)
            if keep_acct is None:
                gone_acct.customer_id = survivor_id
                await record_moves(session, LoyaltyAccountRow, "customer_id", [()], **log)
            else:
                await set_aside(session, LoyaltyAccountRow, "customer_id", [gone_acct], **log)
                keep_acct.balance += gone_acct.balance
                keep_acct.lifetime_points += gone_acct.lifetime_points
                await self._loyalty.drop(session, gone_acct)
            await session.flush()

        # Rows keyed by the customer (each owner sets the merged one's duplicates aside first).
        await self._rows.repoint(session, tenant, merged_id, survivor_id, merge_id)
        await self._loyalty.repoint(session, tenant, merged_id, survivor_id, merge_id)
        await self._broadcasts.repoint(session, tenant, merged_id, survivor_id, merge_id)
        await self._consent.merged(session, tenant, merged_id, survivor_id, merge_id)
        await self._offers.merged(session, tenant, merged_id, survivor_id, merge_id)
        await self._fission.merged(session, tenant, merged_id, survivor_id, merge_id)
        await self._notices.merged(session, tenant, merged_id, survivor_id, merge_id)
        await self._rows.alias(session, tenant, merged_id, survivor_id, merge_id)
        session.expire_all()
        survivor = await self._rows.find(session, tenant, survivor_id)
        if survivor is not None:
            await self._activity.recompute(session, survivor, utc(now))

    async def unmerge(
        self,
        session: AsyncSession,
        tenant: str,
        restored_id: str,
        survivor_id: str,
        *,
        merge_id: str,
        now: datetime,
    ) -> None:
        if restored_id == survivor_id:
            return
        await session.flush()
        await self._rows.unalias(session, tenant, restored_id)
        given = await give_back_customer(
            session,
            Base.metadata,
            tenant_id=tenant,
            merge_id=merge_id,
            restored_id=restored_id,
            survivor_id=survivor_id,
        )
        session.expire_all()
        if not given.anything:
            return
        gone = given.restored.get(ActivityRow.__tablename__, [])
        keep = await self._rows.find(session, tenant, survivor_id)
        if keep is not None and gone:
            _uncombine(keep, gone[0])
        for customer in (restored_id, survivor_id):
            await self._loyalty.rebuild(session, tenant, customer, EARNING_SOURCES, at=utc(now))
            row = await self._rows.find(session, tenant, customer)
            if row is None and (await self._rows.order_totals(session, tenant, customer))[0]:
                # Its activity row (the merged one's, taken whole) went back with the restored
                # customer, but orders paid since are the survivor's: it needs a row of its own.
                row = await self._activity.touch(session, tenant, customer, utc(now))
            if row is None:
                continue
            row.order_count, row.revenue_minor = await self._rows.order_totals(
                session, tenant, customer
            )
            row.first_order_at, row.last_order_at = await self._rows.order_span(
                session, tenant, customer
            )
            await session.flush()
            await self._activity.recompute(session, row, utc(now))

    async def forget(self, session: AsyncSession, tenant: str, customer_ids: Sequence[str]) -> None:
        ids = list(customer_ids)
        await forget_moves(session, Base.metadata, tenant_id=tenant, customer_ids=ids)
        await self._rows.forget(session, tenant, ids)
        await self._loyalty.forget(session, tenant, ids)
        await self._broadcasts.forget(session, tenant, ids)
        await self._consent.forgotten(session, tenant, ids)
        await self._offers.forgotten(session, tenant, ids)
        await self._fission.forgotten(session, tenant, ids)
        await self._notices.forgotten(session, tenant, ids)


def _uncombine(keep: ActivityRow, gone: dict[str, object]) -> None:
    """Take back from the survivor's row what `_combine` added of the restored one's (its orders
    and revenue are counted again from the orders; first/last seen and flags stay as they are)."""
    referrals = gone.get("referrals_made")
    if isinstance(referrals, int):
        keep.referrals_made = max(keep.referrals_made - referrals, 0)
    hours = gone.get("active_hours")
    if isinstance(hours, list) and keep.active_hours:
        keep.active_hours = [
            max(x - int(y), 0) for x, y in zip(keep.active_hours, hours, strict=True)
        ]


def _combine(keep: ActivityRow, gone: ActivityRow) -> None:
    """What two activity rows of one person say together."""
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
