"""identity's customer events across every concept: a merge moves the merged customer's rows
to the survivor (logged, `loopkit.customer_rows`), and so does it with the referrer named by
touches and by leads' attribution; an unmerge gives them back (a folded lead or fission
participation is its own again), a forget erases what identifies the person (rows stay for the
counts), deletes their fission participations and drops them as the referrer of others' touches
and leads."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession

from closedloop_acquisition.callbacks import repository as inbox
from closedloop_acquisition.fission.service import FissionService
from closedloop_acquisition.leads import repository as leads_repo
from closedloop_acquisition.leads.service import LeadService
from closedloop_acquisition.models import Base, FissionParticipantRow, LeadRow
from closedloop_acquisition.touches import repository as touches
from loopkit.customer_rows import forget_moves, give_back_customer


class CustomerEvents:
    def __init__(self, leads: LeadService, fission: FissionService) -> None:
        self._leads = leads
        self._fission = fission

    async def merged(  # noqa: PLR0917 - the event's fields and its time
        self,
        session: AsyncSession,
        tenant_id: str,
        survivor_id: str,
        merged_id: str,
        now: datetime,
        merge_id: str = "",
    ) -> None:
        # First: share visits naming the merged id that asked identity before the merge commit
        # first, so the moves below see their touches and credits (as a forget does).
        await touches.wait_for_visits(session, tenant_id, [merged_id])
        await self._fission.customer_merged(session, tenant_id, survivor_id, merged_id, merge_id)
        # Touches before leads: a lead being credited holds the touch naming its referrer
        # (`touches.held_referrer`) until it commits, so the leads' move below sees it.
        await touches.repoint(session, tenant_id, merged_id, survivor_id, merge_id)
        await self._leads.customer_merged(session, tenant_id, survivor_id, merged_id, now, merge_id)

    async def unmerged(
        self,
        session: AsyncSession,
        tenant_id: str,
        restored_id: str,
        survivor_id: str,
        merge_id: str,
    ) -> None:
        # The referrer inside leads' attribution first: its moves are not a column's.
        await leads_repo.give_back_referrer(session, tenant_id, merge_id, restored_id, survivor_id)
        given = await give_back_customer(
            session,
            Base.metadata,
            tenant_id=tenant_id,
            merge_id=merge_id,
            restored_id=restored_id,
            survivor_id=survivor_id,
        )
        await self._leads.customer_unmerged(
            session, tenant_id, survivor_id, given.restored.get(LeadRow.__tablename__, [])
        )
        await self._fission.customer_unmerged(
            session,
            tenant_id,
            [restored_id, survivor_id],
            given.restored.get(FissionParticipantRow.__tablename__, []),
        )

    async def forgotten(
        self, session: AsyncSession, tenant_id: str, customer_ids: Sequence[str]
    ) -> None:
        """Erase form values and WeChat ids of these customers (and the merge log's copies),
        their fission participations, and their ids as the referrer on others' touches and
        leads."""
        # First: share visits naming them that asked identity before the forget commit first.
        await touches.wait_for_visits(session, tenant_id, customer_ids)
        await forget_moves(session, Base.metadata, tenant_id=tenant_id, customer_ids=customer_ids)
        their_touches = await touches.touches_of_customers(session, tenant_id, customer_ids)
        openids = {
            str(i["value"])
            for t in their_touches
            for i in t.identities
            if i.get("kind") == "wechat_openid" and i.get("value")
        }
        # Participations before touches: a poster's scan holds its participation (row lock)
        # until it commits its touches naming them, so the untying below sees those.
        await self._fission.customer_forgotten(session, tenant_id, customer_ids)
        await touches.forget(session, tenant_id, customer_ids)
        await touches.forget_referrer(session, tenant_id, customer_ids)
        await leads_repo.forget(session, tenant_id, customer_ids)
        await leads_repo.forget_referrer(session, tenant_id, customer_ids)
        await inbox.forget_senders(session, tenant_id, openids)
