"""MergeCustomers / UnmergeCustomer, and the merge step a resolve takes when the evidence says two
customers are one person. Never commits."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession
from ulid import ULID

from closedloop.events.v1 import identity_events_pb2 as ev
from closedloop_identity.clock import Clock, system_clock
from closedloop_identity.customers.contracts import identity_to_pb
from closedloop_identity.customers.identities import IdentityKey
from closedloop_identity.customers.repository import ACTIVE, MERGED, CustomerRepository
from closedloop_identity.customers.service import CustomerService
from closedloop_identity.customers.views import CustomerView, utc
from closedloop_identity.merges.repository import MergeRepository
from closedloop_identity.models import CustomerRow, MergeRow
from loopkit.errors import FailedPrecondition, InvalidArgument, NotFound
from loopkit.events import Outbox


class MergeService:
    def __init__(
        self, outbox: Outbox, customers: CustomerService, clock: Clock = system_clock
    ) -> None:
        self._outbox = outbox
        self._customers = customers
        self._now = clock

    async def merge(
        self,
        session: AsyncSession,
        tenant_id: str,
        customer_ids: list[str],
        actor: str,
        reason: str,
    ) -> tuple[CustomerView, list[str]]:
        if len(set(customer_ids)) < 2:
            raise InvalidArgument("name at least two different customers", field="customer_ids")
        repo = CustomerRepository(session)
        live: dict[str, CustomerRow] = {}
        for cid in customer_ids:
            row = await self._customers.live(repo, tenant_id, cid)
            live[row.id] = row
        await repo.lock_customers(live)
        rows = sorted(live.values(), key=lambda r: (utc(r.created_at), r.id))
        if any(r.status != ACTIVE for r in rows):
            raise FailedPrecondition(
                "a customer changed while merging; retry", field="customer_ids"
            )
        survivor, merged_ids = rows[0], []
        for other in rows[1:]:
            await self.merge_into(
                repo, survivor, other, actor=actor, trigger=None, reason=reason or "operator merge"
            )
            merged_ids.append(other.id)
        await repo.flush()
        return await self._customers.view(repo, survivor), merged_ids

    async def merge_into(
        self,
        repo: CustomerRepository,
        survivor: CustomerRow,
        merged: CustomerRow,
        *,
        actor: str,
        trigger: IdentityKey | None,
        reason: str,
    ) -> None:
        """Move `merged`'s identities to `survivor` (both row-locked by the caller), record which
        moved, audit both sides and emit customer.merged."""
        now = self._now()
        moved = await repo.move_identities(merged.id, survivor.id)
        merged.status, merged.merged_into, merged.updated_at = MERGED, survivor.id, now
        survivor.attributes = {**merged.attributes, **survivor.attributes}
        survivor.updated_at = now
        MergeRepository(repo.session).add(
            MergeRow(
                id=str(ULID()),
                tenant_id=survivor.tenant_id,
                survivor_id=survivor.id,
                merged_id=merged.id,
                reason=reason,
                actor=actor,
                trigger=trigger.describe() if trigger else None,
                moved_identity_ids=moved,
                created_at=now,
                undone_at=None,
            )
        )
        audit = self._customers.audit
        audit(repo, survivor, "merged", actor, other=merged.id, identity=trigger, detail=reason)
        audit(
            repo, merged, "merged_into", actor, other=survivor.id, identity=trigger, detail=reason
        )
        await self._outbox.emit(
            repo.session,
            "customer.merged",
            tenant_id=survivor.tenant_id,
            customer_id=survivor.id,
            payload=ev.CustomerMerged(
                survivor_id=survivor.id,
                merged_id=merged.id,
                reason=reason,
                trigger=identity_to_pb(trigger) if trigger else None,
            ),
        )

    async def unmerge(
        self,
        session: AsyncSession,
        tenant_id: str,
        customer_id: str,
        actor: str,
        reason: str,
    ) -> tuple[CustomerView, CustomerView]:
        repo = CustomerRepository(session)
        merged = await repo.get(tenant_id, customer_id)
        if merged is None:
            raise NotFound(f"no customer {customer_id}", field="customer_id")
        if merged.status != MERGED:
            raise FailedPrecondition(
                f"customer {customer_id} is {merged.status}, not merged", field="customer_id"
            )
        record = await MergeRepository(session).last_merge_of(tenant_id, customer_id)
        if record is None:
            raise FailedPrecondition(f"no merge of {customer_id} to undo", field="customer_id")
        holder = await self._customers.live(repo, tenant_id, record.survivor_id)
        locked = {c.id: c for c in await repo.lock_customers([holder.id, merged.id])}
        holder, merged = locked[holder.id], locked[merged.id]
        now = self._now()
        await repo.move_identity_ids(record.moved_identity_ids, holder.id, merged.id)
        merged.status, merged.merged_into, merged.updated_at = ACTIVE, None, now
        record.undone_at = now
        why = reason or "operator unmerge"
        self._customers.audit(repo, merged, "unmerged", actor, other=holder.id, detail=why)
        self._customers.audit(repo, holder, "unmerged_from", actor, other=merged.id, detail=why)
        await repo.flush()
        await self._outbox.emit(
            session,
            "customer.unmerged",
            tenant_id=tenant_id,
            customer_id=merged.id,
            payload=ev.CustomerUnmerged(restored_id=merged.id, survivor_id=holder.id, reason=why),
        )
        return await self._customers.view(repo, merged), await self._customers.view(repo, holder)
