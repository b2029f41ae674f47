"""GetMergePolicy / SetMergePolicy, and the policy a resolve that may merge reads."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from closedloop_identity.clock import Clock, system_clock
from closedloop_identity.customers.identities import Kind
from closedloop_identity.policies.policy import DEFAULT_MERGE_KINDS, MergePolicy
from closedloop_identity.policies.repository import PolicyRepository


class PolicyService:
    def __init__(self, clock: Clock = system_clock) -> None:
        self._now = clock

    async def get(self, session: AsyncSession, tenant_id: str) -> MergePolicy:
        row = await PolicyRepository(session).get(tenant_id)
        if row is None:
            return MergePolicy()
        return MergePolicy(
            frozenset(Kind(k) for k in row.merge_kinds), row.phone_requires_verification
        )

    async def set(self, session: AsyncSession, tenant_id: str, policy: MergePolicy) -> MergePolicy:
        kinds = sorted(str(k) for k in (policy.merge_kinds or DEFAULT_MERGE_KINDS))
        await PolicyRepository(session).save(
            tenant_id, kinds, policy.phone_requires_verification, self._now()
        )
        return await self.get(session, tenant_id)
