"""ForgetCustomer: erase a customer and everything merged into it. Idempotent; never commits."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from closedloop.events.v1 import identity_events_pb2 as ev
from closedloop_identity.clock import Clock, system_clock
from closedloop_identity.customers.repository import FORGOTTEN, CustomerRepository
from closedloop_identity.customers.service import CustomerService
from closedloop_identity.keys.repository import KeyRepository
from closedloop_identity.keys.service import KeysKnown
from closedloop_identity.merges.repository import MergeRepository
from loopkit.errors import NotFound
from loopkit.events import Outbox
from loopkit.uow import on_commit


class ErasureService:
    def __init__(
        self,
        outbox: Outbox,
        customers: CustomerService,
        clock: Clock = system_clock,
        keys_known: KeysKnown | None = None,
    ) -> None:
        self._outbox = outbox
        self._keys_known = keys_known
        self._customers = customers
        self._now = clock

    async def forget(
        self,
        session: AsyncSession,
        tenant_id: str,
        customer_id: str,
        actor: str,
        reason: str,
    ) -> list[str]:
        repo = CustomerRepository(session)
        row = await repo.get(tenant_id, customer_id)
        if row is None:
            raise NotFound(f"no customer {customer_id}", field="customer_id")
        live = await repo.follow(tenant_id, customer_id) or row
        ids = [live.id, *await repo.merged_into(tenant_id, live.id)]
        if live.status == FORGOTTEN:
            return ids  # erasure is idempotent
        await repo.lock_customers(ids)
        now = self._now()
        await repo.delete_identities_of(ids)
        await repo.erase_audit_values(tenant_id, ids)
        await MergeRepository(session).erase_personal_values(tenant_id, ids)
        # Destroying the data keys ends every sealed copy in streams, replays and dead letters
        # (loopkit.pii), in the same transaction as the erasure.
        await KeyRepository(session).erase(tenant_id, ids, now)
        if self._keys_known is not None:
            # This process stops using the keys at the commit (others within their cache TTL).
            known = self._keys_known
            on_commit(session, lambda: known(tenant_id, dict.fromkeys(ids)))
        for cid in ids:
            customer = await repo.get(tenant_id, cid)
            assert customer is not None
            customer.status, customer.attributes, customer.updated_at = FORGOTTEN, {}, now
        self._customers.audit(repo, live, "forgotten", actor, detail=reason or "erasure request")
        await repo.flush()
        await self._outbox.emit(
            session,
            "customer.forgotten",
            tenant_id=tenant_id,
            customer_id=live.id,
            payload=ev.CustomerForgotten(customer_id=live.id, forgotten_ids=ids),
        )
        return ids
