"""Customers and their identities: reads (get, search, history), LinkIdentity / UnlinkIdentity,
and the steps the other concepts share (the live customer behind an id, its view, an audit entry,
attaching a claim, dropping an expired pending id). Never commits: the caller owns the unit of
work, so a state change and its events land together or not at all."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession
from ulid import ULID

from closedloop.events.v1 import identity_events_pb2 as ev
from closedloop_identity.clock import Clock, system_clock
from closedloop_identity.customers.contracts import identity_to_pb
from closedloop_identity.customers.identities import (
    PENDING_ID_TTL,
    ClaimedIdentity,
    IdentityKey,
    Kind,
)
from closedloop_identity.customers.repository import ACTIVE, FORGOTTEN, CustomerRepository
from closedloop_identity.customers.views import CustomerView, HistoryView, IdentityView, utc
from closedloop_identity.models import AuditRow, CustomerRow, IdentityRow
from loopkit.errors import AlreadyExists, InvalidArgument, NotFound
from loopkit.events import Outbox


class CustomerService:
    def __init__(self, outbox: Outbox, clock: Clock = system_clock) -> None:
        self._outbox = outbox
        self._now = clock

    # --- reads ----------------------------------------------------------------------------

    async def get(self, session: AsyncSession, tenant_id: str, customer_id: str) -> CustomerView:
        repo = CustomerRepository(session)
        return await self.view(repo, await self.live(repo, tenant_id, customer_id))

    async def search(
        self,
        session: AsyncSession,
        tenant_id: str,
        candidates: list[tuple[str | None, str]],
        limit: int,
    ) -> list[CustomerView]:
        repo = CustomerRepository(session)
        views = []
        for customer_id in await repo.search(tenant_id, candidates, limit):
            row = await repo.get(tenant_id, customer_id)
            if row is not None and row.status == ACTIVE:
                views.append(await self.view(repo, row))
        return views

    async def history(
        self, session: AsyncSession, tenant_id: str, customer_id: str
    ) -> list[HistoryView]:
        repo = CustomerRepository(session)
        row = await repo.get(tenant_id, customer_id)
        if row is None:
            raise NotFound(f"no customer {customer_id}", field="customer_id")
        live = await repo.follow(tenant_id, customer_id) or row
        ids = [live.id, *await repo.merged_into(tenant_id, live.id)]
        if customer_id not in ids:
            ids.append(customer_id)
        return [
            HistoryView(
                id=a.id,
                action=a.action,
                actor=a.actor,
                customer_id=a.customer_id,
                other_customer_id=a.other_customer_id,
                identity=(
                    IdentityKey(
                        Kind(a.identity_kind), a.identity_scope or "", a.identity_value or ""
                    )
                    if a.identity_kind
                    else None
                ),
                detail=a.detail,
                at=utc(a.at),
            )
            for a in await repo.history(tenant_id, ids)
        ]

    # --- LinkIdentity / UnlinkIdentity ----------------------------------------------------

    async def link(
        self,
        session: AsyncSession,
        tenant_id: str,
        customer_id: str,
        claim: ClaimedIdentity,
        actor: str,
    ) -> CustomerView:
        repo = CustomerRepository(session)
        await repo.lock_identities(tenant_id, [claim.key])
        customer = await self.live(repo, tenant_id, customer_id, lock=True)
        existing = await repo.find_identities(tenant_id, [claim.key])
        existing = [r for r in existing if not await self.drop_if_expired(repo, r)]
        if existing and existing[0].customer_id != customer.id:
            raise AlreadyExists(
                f"{claim.key.describe()} belongs to customer {existing[0].customer_id}; "
                "merge the two customers instead",
                field="identity",
            )
        if existing:
            if claim.verified and not existing[0].verified:
                existing[0].verified = True
        else:
            await self.attach(repo, customer, claim, actor, announce=True)
        await repo.flush()
        return await self.view(repo, customer)

    async def unlink(
        self,
        session: AsyncSession,
        tenant_id: str,
        customer_id: str,
        key: IdentityKey,
        actor: str,
    ) -> CustomerView:
        repo = CustomerRepository(session)
        await repo.lock_identities(tenant_id, [key])
        customer = await self.live(repo, tenant_id, customer_id, lock=True)
        rows = [
            r for r in await repo.find_identities(tenant_id, [key]) if r.customer_id == customer.id
        ]
        if not rows:
            raise NotFound(
                f"customer {customer.id} has no identity {key.describe()}", field="identity"
            )
        await repo.delete_identity(rows[0])
        self.audit(repo, customer, "identity_unlinked", actor, identity=key)
        await repo.flush()
        await self._outbox.emit(
            session,
            "customer.identity_unlinked",
            tenant_id=tenant_id,
            customer_id=customer.id,
            payload=ev.CustomerIdentityUnlinked(
                customer_id=customer.id, identity=identity_to_pb(key)
            ),
        )
        return await self.view(repo, customer)

    # --- steps shared with resolve, merges and erasure ------------------------------------

    async def live(
        self, repo: CustomerRepository, tenant_id: str, customer_id: str, *, lock: bool = False
    ) -> CustomerRow:
        """The customer an id stands for today (following merges); NotFound if forgotten."""
        if not customer_id:
            raise InvalidArgument("customer_id is required", field="customer_id")
        row = await repo.follow(tenant_id, customer_id)
        if row is None:
            raise NotFound(f"no customer {customer_id}", field="customer_id")
        if row.status == FORGOTTEN:
            raise NotFound(f"customer {customer_id} was forgotten", field="customer_id")
        if lock:
            locked = await repo.lock_customers([row.id])
            row = locked[0]
            if row.status != ACTIVE:  # merged away while we waited for the lock
                return await self.live(repo, tenant_id, row.id, lock=True)
        return row

    async def view(self, repo: CustomerRepository, row: CustomerRow) -> CustomerView:
        identities = [
            IdentityView(IdentityKey(Kind(i.kind), i.scope, i.value), i.verified)
            for i in await repo.identities_of([row.id])
        ]
        return CustomerView(
            tenant_id=row.tenant_id,
            customer_id=row.id,
            status=row.status,
            identities=identities,
            attributes=dict(row.attributes),
            created_at=utc(row.created_at),
            merged_ids=await repo.merged_into(row.tenant_id, row.id),
        )

    async def drop_if_expired(self, repo: CustomerRepository, row: IdentityRow) -> bool:
        """A pending id past its 90 days names nobody any more: drop it, so it can be reused."""
        if row.expires_at is None or utc(row.expires_at) > self._now():
            return False
        await repo.delete_identity(row)
        await repo.flush()
        return True

    async def attach(
        self,
        repo: CustomerRepository,
        customer: CustomerRow,
        claim: ClaimedIdentity,
        actor: str,
        *,
        announce: bool,
    ) -> None:
        now = self._now()
        expires = now + PENDING_ID_TTL if claim.key.kind is Kind.WECOM_PENDING_ID else None
        repo.add(
            IdentityRow(
                id=str(ULID()),
                tenant_id=customer.tenant_id,
                customer_id=customer.id,
                kind=str(claim.key.kind),
                scope=claim.key.scope,
                value=claim.key.value,
                verified=claim.verified,
                created_at=now,
                expires_at=expires,
            )
        )
        self.audit(repo, customer, "identity_linked", actor, identity=claim.key)
        if announce:
            await self._outbox.emit(
                repo.session,
                "customer.identity_linked",
                tenant_id=customer.tenant_id,
                customer_id=customer.id,
                payload=ev.CustomerIdentityLinked(
                    customer_id=customer.id, identity=identity_to_pb(claim.key, claim.verified)
                ),
            )

    def audit(
        self,
        repo: CustomerRepository,
        customer: CustomerRow,
        action: str,
        actor: str,
        *,
        other: str | None = None,
        identity: IdentityKey | None = None,
        detail: str = "",
    ) -> None:
        repo.add(
            AuditRow(
                id=str(ULID()),
                tenant_id=customer.tenant_id,
                customer_id=customer.id,
                action=action,
                actor=actor or "unknown",
                other_customer_id=other,
                identity_kind=str(identity.kind) if identity else None,
                identity_scope=identity.scope if identity else None,
                identity_value=identity.value if identity else None,
                detail=detail[:1000],
                at=self._now(),
            )
        )
