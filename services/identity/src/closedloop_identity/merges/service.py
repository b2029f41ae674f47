"""MergeCustomers / UnmergeCustomer, and the merge step a resolve takes when the evidence says two
customers are one person. Never commits."""

from __future__ import annotations

from datetime import datetime

from google.protobuf.timestamp_pb2 import Timestamp
from sqlalchemy.ext.asyncio import AsyncSession
from ulid import ULID

from closedloop.events.v1 import identity_events_pb2 as ev
from closedloop_identity.clock import Clock, system_clock
from closedloop_identity.customers.contracts import identity_to_pb
from closedloop_identity.customers.identities import IdentityKey
from closedloop_identity.customers.repository import (
    ACTIVE,
    FORGOTTEN,
    MAX_CHAIN,
    MERGED,
    CustomerRepository,
)
from closedloop_identity.customers.service import CustomerService
from closedloop_identity.customers.views import CustomerView, utc
from closedloop_identity.merges.repository import MergeRepository
from closedloop_identity.models import CustomerRow, MergeRow
from loopkit.errors import FailedPrecondition, InvalidArgument, NotFound
from loopkit.events import Outbox

# Stands for a key a customer does not have (None is a value an attribute may hold).
_ABSENT = object()


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
        # The survivor's own values win; the merged customer keeps its attributes on its row.
        taken = {k: v for k, v in merged.attributes.items() if k not in survivor.attributes}
        survivor.attributes = {**merged.attributes, **survivor.attributes}
        survivor.updated_at = now
        merge_id = str(ULID())
        MergeRepository(repo.session).add(
            MergeRow(
                id=merge_id,
                tenant_id=survivor.tenant_id,
                survivor_id=survivor.id,
                merged_id=merged.id,
                reason=reason,
                actor=actor,
                trigger=trigger.describe() if trigger else None,
                moved_identity_ids=moved,
                taken_attributes=taken,
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
                merge_id=merge_id,
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
        holder = await self._holder(repo, record.survivor_id)
        [merged] = await repo.lock_customers([merged.id])
        now = self._now()
        await repo.move_identity_ids(record.moved_identity_ids, holder.id, merged.id)
        await self._take_back_attributes(repo, record, holder, now)
        merged.status, merged.merged_into, merged.updated_at = ACTIVE, None, now
        record.undone_at = now
        why = reason or "operator unmerge"
        self._customers.audit(repo, merged, "unmerged", actor, other=holder.id, detail=why)
        self._customers.audit(repo, holder, "unmerged_from", actor, other=merged.id, detail=why)
        await repo.flush()
        merged_at = Timestamp()
        merged_at.FromDatetime(utc(record.created_at))
        await self._outbox.emit(
            session,
            "customer.unmerged",
            tenant_id=tenant_id,
            customer_id=merged.id,
            payload=ev.CustomerUnmerged(
                restored_id=merged.id,
                survivor_id=holder.id,
                reason=why,
                merge_id=record.id,
                merged_into_id=record.survivor_id,
                merged_at=merged_at,
            ),
        )
        return await self._customers.view(repo, merged), await self._customers.view(repo, holder)

    async def _take_back_attributes(
        self, repo: CustomerRepository, record: MergeRow, holder: CustomerRow, now: datetime
    ) -> None:
        """Remove from the survivor what it gained from the merged customer in `record`.

        A value changed since stays (as identities linked to the survivor since do). When the
        survivor was itself merged later, the values travelled on through those merges: follow
        them to `holder`, taking back only what each later merge carried with the same value
        (what the next customer already had was its own)."""
        taken = dict(record.taken_attributes or {})
        merges = MergeRepository(repo.session)
        row = await self._locked(repo, record.survivor_id)
        while taken and row is not None:
            taken = {k: v for k, v in taken.items() if row.attributes.get(k, _ABSENT) == v}
            if taken:
                row.attributes = {k: v for k, v in row.attributes.items() if k not in taken}
                row.updated_at = now
            if row.id == holder.id:
                return
            onward = await merges.last_merge_of(record.tenant_id, row.id)
            if onward is None:
                return
            carried = onward.taken_attributes or {}
            taken = {k: v for k, v in taken.items() if carried.get(k, _ABSENT) == v}
            row = await self._locked(repo, onward.survivor_id)

    async def _holder(self, repo: CustomerRepository, survivor_id: str) -> CustomerRow:
        """The live customer holding what the merge gave `survivor_id`, found by following the
        merge chain on freshly read, row-locked rows: a concurrent unmerge of a customer on the
        way may have made it the holder again while this one waited."""
        row = await self._locked(repo, survivor_id)
        for _ in range(MAX_CHAIN):
            if row is None:
                raise NotFound(f"no customer {survivor_id}", field="customer_id")
            if row.status == FORGOTTEN:
                raise NotFound(f"customer {survivor_id} was forgotten", field="customer_id")
            if row.status != MERGED or row.merged_into is None:
                return row
            row = await self._locked(repo, row.merged_into)
        raise RuntimeError(f"merge chain of {survivor_id} longer than {MAX_CHAIN}")

    @staticmethod
    async def _locked(repo: CustomerRepository, customer_id: str) -> CustomerRow | None:
        # A row on the way may be merged away itself; its lock keeps a concurrent unmerge of it
        # from writing its attributes under us.
        rows = await repo.lock_customers([customer_id])
        return rows[0] if rows else None
