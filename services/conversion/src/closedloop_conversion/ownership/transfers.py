"""Customer transfer when a rep leaves (离职继承) or moves (在职转接), with WeCom's semantics:
each customer's transfer is pending until WeCom reports it done (automatic takeover after 24 h),
refused by the customer, or over the limit (an active rep's customer at most twice in 90 days).
The customer keeps their former owner until the transfer completes: never left without one.
With a gateway, WeCom is asked and its answer read back (ownership.handovers)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta

from sqlalchemy.ext.asyncio import AsyncSession

from closedloop.events.v1 import conversion_events_pb2 as ev
from closedloop_conversion.common import new_id, now, optional, utc
from closedloop_conversion.models import OwnershipRow, RepRow, TransferRow
from closedloop_conversion.ownership.repository import OwnershipRepository
from closedloop_conversion.ownership.views import TransferBatch, TransferView
from closedloop_conversion.pipeline.repository import PipelineRepository
from closedloop_conversion.sales.policy import Candidate, Rule, choose_owner
from closedloop_conversion.sales.repository import SalesRepository
from closedloop_conversion.sales.service import SalesService
from loopkit.errors import FailedPrecondition, InvalidArgument, NotFound
from loopkit.events import Outbox
from loopkit.views import view_of

AUTO_TAKEOVER = timedelta(hours=24)
LIMIT_WINDOW = timedelta(days=90)
ON_JOB_LIMIT = 2


class TransferService:
    def __init__(
        self, outbox: Outbox, sales: SalesService, *, auto_takeover: timedelta = AUTO_TAKEOVER
    ) -> None:
        self._outbox = outbox
        self._reps = SalesRepository()
        self._repo = OwnershipRepository()
        self._pipeline = PipelineRepository()
        self._sales = sales
        self._auto_takeover = auto_takeover

    async def start(
        self,
        session: AsyncSession,
        tenant: str,
        from_rep_id: str,
        *,
        to_rep_id: str,
        rule: Rule | None,
        customer_ids: Sequence[str],
        actor: str,
    ) -> TransferBatch:
        from_rep = await self._reps.rep(session, tenant, from_rep_id)
        if from_rep is None:
            raise NotFound("no such rep", field="from_rep_id")
        to_rep: RepRow | None = None
        if to_rep_id:
            to_rep = await self._reps.rep(session, tenant, to_rep_id)
            if to_rep is None:
                raise NotFound("no such rep", field="to_rep_id")
            if to_rep.status != "active":
                raise FailedPrecondition("the receiving rep has departed", field="to_rep_id")
            if to_rep.id == from_rep.id:
                raise InvalidArgument("must differ from from_rep_id", field="to_rep_id")
        mode = "resigned" if from_rep.status == "departed" else "on_job"
        owned = await self._repo.ownerships(
            session, tenant, rep_id=from_rep.id, customer_ids=list(customer_ids)
        )
        batch = TransferBatch(new_id(), [])
        if mode == "resigned" and not customer_ids:
            # Leads of people the rep never befriended have no transfer to wait for.
            await self._sales.requeue_leads(
                session, tenant, from_rep.id, {o.customer_id for o in owned}
            )
        at = now()
        for ownership in owned:
            pending = await self._repo.pending_transfer(session, tenant, ownership.id)
            if pending is not None:
                batch.transfers.append(
                    view_of(TransferView, pending)
                )  # already on its way: not a second transfer
                continue
            target = to_rep or await self._pick(session, tenant, from_rep, rule or Rule.ROUND_ROBIN)
            status, reason = "pending", ""
            if mode == "on_job":
                since = at - LIMIT_WINDOW
                count = await self._repo.on_job_transfers_since(
                    session, tenant, ownership.customer_id, since
                )
                if count >= ON_JOB_LIMIT:
                    status = "over_limit"
                    reason = f"already transferred {count} times in 90 days"
            row = TransferRow(
                id=new_id(),
                tenant_id=tenant,
                batch_id=batch.batch_id,
                customer_id=ownership.customer_id,
                ownership_id=ownership.id,
                from_rep_id=from_rep.id,
                to_rep_id=target.id,
                mode=mode,
                status=status,
                reason=reason,
                actor=optional(actor, "actor"),
                requested_at=at,
                completed_at=None,
                leads_moved=0,
                opportunities_moved=0,
                wecom_requested_at=None,
            )
            self._repo.add(session, row)
            await session.flush()
            batch.transfers.append(view_of(TransferView, row))
        return batch

    async def report(
        self, session: AsyncSession, tenant: str, transfer_id: str, status: str, reason: str = ""
    ) -> TransferView:
        row = await self._repo.transfer(session, tenant, transfer_id)
        if row is None:
            raise NotFound("no such transfer", field="transfer_id")
        if row.status == status:
            return view_of(TransferView, row)
        if row.status != "pending":
            raise FailedPrecondition(f"transfer is already {row.status}", field="transfer_id")
        if status == "completed":
            await self.complete(session, row, now())
        elif status in ("refused", "over_limit"):
            row.status = status
            row.reason = reason or ("refused by the customer" if status == "refused" else "")
            row.completed_at = now()
        else:
            raise InvalidArgument("must be completed or refused", field="status")
        return view_of(TransferView, row)

    async def fail_from_wecom(
        self,
        session: AsyncSession,
        tenant: str,
        *,
        corp_id: str,
        external_userid: str,
        to_rep_id: str,
        fail_reason: str,
    ) -> bool:
        """WeCom's transfer_fail callback: the customer refused, or the limit was hit."""
        customers = await self._repo.customers_of_contact(session, tenant, corp_id, external_userid)
        if not customers:
            return False
        row = await self._repo.pending_transfer_to(session, tenant, customers, to_rep_id)
        if row is None:
            return False
        status = "over_limit" if fail_reason == "customer_limit_exceed" else "refused"
        row.status = status
        row.reason = f"WeCom: {fail_reason or 'failed'}"
        row.completed_at = now()
        return True

    async def sweep(
        self, session: AsyncSession, tenant: str, as_of: datetime
    ) -> list[TransferView]:
        """WeCom's automatic takeover assumed: pending for 24 h means done (every tenant when
        `tenant` is empty). Without a gateway only; with one, WeCom's own answer is read back
        (ownership.handovers)."""
        due = await self._repo.due_transfers(session, tenant, utc(as_of) - self._auto_takeover)
        for row in due:
            await self.complete(session, row, as_of)
        return [view_of(TransferView, row) for row in due]

    async def list(
        self, session: AsyncSession, tenant: str, *, rep_id: str = "", status: str = ""
    ) -> Sequence[TransferView]:
        rows = await self._repo.transfers(session, tenant, rep_id=rep_id, status=status)
        return [view_of(TransferView, row) for row in rows]

    async def _pick(
        self, session: AsyncSession, tenant: str, from_rep: RepRow, rule: Rule
    ) -> RepRow:
        for team in (from_rep.team, ""):
            pool = [
                r for r in await self._reps.lock_pool(session, tenant, team) if r.id != from_rep.id
            ]
            chosen = choose_owner(
                rule,
                [
                    Candidate(r.id, r.capacity, r.open_leads, r.rr_seq, r.status == "active")
                    for r in pool
                ],
            )
            if chosen is not None:
                rep = next(r for r in pool if r.id == chosen)
                # Taking turns across the batch: the chosen rep goes to the back of the queue.
                await self._reps.take_turn(session, rep)
                return rep
        raise FailedPrecondition("no active rep to take the customers over", field="to_rep_id")

    async def complete(self, session: AsyncSession, row: TransferRow, at: datetime) -> None:
        """The takeover rep has the customer: ownership, leads and open opportunities move."""
        tenant = row.tenant_id
        old = await self._repo.ownership_by_id(session, tenant, row.ownership_id)
        if old is None:
            raise NotFound("the transferred friendship is gone", field="transfer_id")
        if old.status == "active":
            old.status = "transferred"
            old.ended_at = at
            old.end_reason = "transferred"
        new = await self._repo.ownership(
            session, tenant, old.corp_id, row.to_rep_id, old.external_userid
        )
        if new is None:
            new = OwnershipRow(
                id=new_id(),
                tenant_id=tenant,
                corp_id=old.corp_id,
                rep_id=row.to_rep_id,
                external_userid=old.external_userid,
                remark=old.remark,
                welcome_status="",
                welcome_latency_ms=None,
            )
            self._repo.add(session, new)
        new.customer_id = old.customer_id
        new.channel_id = old.channel_id
        new.state = old.state
        new.status = "active"
        new.started_at = at
        new.ended_at = None
        new.end_reason = ""
        await session.flush()
        reason = f"transfer {row.id} ({row.mode})"
        row.leads_moved = await self._sales.move_customer_leads(
            session,
            tenant,
            row.customer_id,
            from_rep_id=row.from_rep_id,
            to_rep_id=row.to_rep_id,
            actor=row.actor,
            reason=reason,
        )
        row.opportunities_moved = await self._pipeline.move_open_opportunities(
            session, tenant, row.customer_id, row.from_rep_id, row.to_rep_id
        )
        row.status = "completed"
        row.completed_at = at
        await session.flush()
        await self._outbox.emit(
            session,
            "ownership.transferred",
            tenant_id=tenant,
            customer_id=row.customer_id,
            payload=ev.OwnershipTransferred(
                transfer_id=row.id,
                from_rep_id=row.from_rep_id,
                to_rep_id=row.to_rep_id,
                mode=row.mode,
                leads_moved=row.leads_moved,
                opportunities_moved=row.opportunities_moved,
            ),
        )
