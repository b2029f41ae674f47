"""customer.merged, .unmerged and .forgotten across programs, referrals and rewards.

A merge logs what it moves (`loopkit.customer_rows`); the unmerge gives it back: codes (a code
demoted to secondary is the main one again), shares, visits, referrals made and received, rewards
and what was known of the customer. Referrals the merge voided (a duplicate newcomer, a
self-referral) stay voided: their rewards were clawed back and announced.

The merged id stays an alias of the survivor (a forgotten one of nobody), so an event naming it
that arrives after the merge (an order paid, a lead, a rep deleted) is counted for the live
customer: `live_id`, read from the local table, not asked of identity."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession

from closedloop_referral.clock import utc
from closedloop_referral.models import Base, KnownCustomerRow, ReferralRow
from closedloop_referral.programs.repository import ProgramRepository
from closedloop_referral.referrals.repository import ReferralRepository
from closedloop_referral.referrals.service import ReferralService
from closedloop_referral.rewards.repository import RewardRepository
from loopkit import customer_aliases
from loopkit.customer_rows import (
    forget_moves,
    give_back_customer,
    record_moves,
    set_aside,
    take_moves,
)


class CustomerEvents:
    def __init__(
        self,
        referrals: ReferralService,
        programs: ProgramRepository,
        referral_rows: ReferralRepository,
        rewards: RewardRepository,
    ) -> None:
        self._referrals = referrals
        self._programs = programs
        self._rows = referral_rows
        self._rewards = rewards

    async def live_id(self, session: AsyncSession, tenant: str, customer_id: str) -> str:
        """Who an event's `customer_id` is now: itself, its survivor, or "" (forgotten)."""
        return await customer_aliases.live_id(session, Base.metadata, tenant, customer_id)

    async def merged(  # noqa: PLR0917 - the event's fields and its time
        self,
        session: AsyncSession,
        tenant: str,
        survivor: str,
        merged: str,
        at: datetime,
        merge_id: str = "",
    ) -> None:
        """Moves the merged customer's rows to the survivor without making a self-referral loop
        or a second referral (so a second reward) for one person."""
        log = {"tenant_id": tenant, "merge_id": merge_id}
        mine = await self._rows.of_newcomer(session, tenant, survivor)
        theirs = await self._rows.of_newcomer(session, tenant, merged)
        if mine is not None and theirs is not None:
            if utc(mine.created_at) <= utc(theirs.created_at):
                await self._referrals.void(session, theirs, "merged_duplicate", at)
            else:
                # The earlier referral (the merged id's) wins the survivor's newcomer slot; the
                # dropped one keeps the merged id, swapped through a placeholder so the unique
                # (tenant, newcomer) rule holds at every step.
                await self._referrals.void(session, mine, "merged_duplicate", at)
                mine.newcomer_id = mine.id
                await session.flush()
                theirs.newcomer_id = survivor
                await session.flush()
                mine.newcomer_id = merged
                await session.flush()
                key = "newcomer_id"
                await record_moves(
                    session, ReferralRow, key, [(theirs.id,)], from_id=merged, to_id=survivor, **log
                )
                await record_moves(
                    session, ReferralRow, key, [(mine.id,)], from_id=survivor, to_id=merged, **log
                )
        await self._programs.repoint(session, tenant, merged, survivor, merge_id)
        await self._rows.repoint_referrer(session, tenant, merged, survivor, merge_id)
        await self._rewards.repoint_beneficiary(session, tenant, merged, survivor, merge_id)
        if theirs is not None and mine is None:
            theirs.newcomer_id = survivor  # their one referral is now the survivor's
            await record_moves(
                session,
                ReferralRow,
                "newcomer_id",
                [(theirs.id,)],
                from_id=merged,
                to_id=survivor,
                **log,
            )
        await session.flush()
        for loop in await self._rows.self_loops(session, tenant, survivor):
            loop.flag_reason = "self_referral"
            await self._referrals.void(session, loop, "self_referral", at)
        await self._merge_known(session, tenant, survivor, merged, merge_id)
        await customer_aliases.alias(
            session,
            Base.metadata,
            tenant_id=tenant,
            merged=merged,
            survivor=survivor,
            merge_id=merge_id,
        )

    async def unmerged(
        self, session: AsyncSession, tenant: str, restored: str, survivor: str, merge_id: str
    ) -> None:
        """What came with `restored` on the merge `merge_id` is its own again."""
        log = {"tenant_id": tenant, "merge_id": merge_id}
        # A swap of the newcomer slot (both were referred) goes back through a placeholder too,
        # so the unique (tenant, newcomer) rule holds at every step.
        back = await take_moves(session, ReferralRow, "newcomer_id", from_id=survivor, **log)
        came = await take_moves(session, ReferralRow, "newcomer_id", from_id=restored, **log)
        swapped = [r for m in back if (r := await self._rows.get(session, str(m.row_key[0])))]
        for row in swapped:
            row.newcomer_id = row.id
        await session.flush()
        for move in came:
            given = await self._rows.get(session, str(move.row_key[0]))
            if given is not None and given.newcomer_id in (move.to_id, survivor):
                given.newcomer_id = restored
        await session.flush()
        for row in swapped:
            row.newcomer_id = survivor
        await session.flush()
        await customer_aliases.unalias(session, Base.metadata, tenant_id=tenant, restored=restored)
        await give_back_customer(
            session,
            Base.metadata,
            restored_id=restored,
            survivor_id=survivor,
            **log,
        )
        await self._programs.promote_codes(session, tenant, restored)
        session.expire_all()

    async def _merge_known(
        self, session: AsyncSession, tenant: str, survivor: str, merged: str, merge_id: str
    ) -> None:
        other = await self._rows.find_known(session, tenant, merged)
        if other is None:
            return
        await set_aside(
            session,
            KnownCustomerRow,
            "customer_id",
            [other],
            tenant_id=tenant,
            merge_id=merge_id,
            from_id=merged,
            to_id=survivor,
        )
        mine = await self._rows.known(session, tenant, survivor)
        leads = [utc(v) for v in (mine.first_lead_at, other.first_lead_at) if v is not None]
        mine.first_lead_at = min(leads) if leads else None
        theirs_first = other.first_paid_at is not None and (
            mine.first_paid_at is None or utc(other.first_paid_at) < utc(mine.first_paid_at)
        )
        if theirs_first:
            mine.first_paid_at = other.first_paid_at
            mine.first_paid_order_id = other.first_paid_order_id
            mine.first_paid_minor = other.first_paid_minor
        await self._rows.drop_known(session, other)

    async def forgotten(self, session: AsyncSession, tenant: str, ids: Sequence[str]) -> None:
        """Erases personal data (openids, device hints, shared content) and the customers'
        codes, and unties the visits of their links from them; the pseudonymous referral and
        reward rows stay, as the accounts of rewards paid."""
        ids = list(ids)
        await forget_moves(session, Base.metadata, tenant_id=tenant, customer_ids=ids)
        await customer_aliases.forget(session, Base.metadata, tenant_id=tenant, customer_ids=ids)
        await self._programs.erase_personal(session, tenant, ids)
        await self._rows.forget_known(session, tenant, ids)
