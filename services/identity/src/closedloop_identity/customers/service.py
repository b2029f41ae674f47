"""Identity domain logic: resolve, link, merge, unmerge, forget. Never commits: the caller owns the
unit of work, so a state change and its events land together or not at all."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Table
from sqlalchemy.ext.asyncio import AsyncSession
from ulid import ULID

from closedloop.events.v1 import identity_events_pb2 as ev
from closedloop_identity.customers.contracts import identity_to_pb
from closedloop_identity.customers.identities import (
    MAX_IDENTITIES_PER_CALL,
    PENDING_ID_TTL,
    ClaimedIdentity,
    IdentityKey,
    Kind,
    dedupe,
)
from closedloop_identity.customers.policy import DEFAULT_MERGE_KINDS, MergePolicy
from closedloop_identity.customers.repository import ACTIVE, FORGOTTEN, MERGED, CustomerRepository
from closedloop_identity.customers.resolution import Owner, plan_resolution
from closedloop_identity.customers.resolve_statements import (
    CUSTOMERS,
    IDENTITIES,
    Rows,
    statements_for,
)
from closedloop_identity.models import AuditRow, CustomerRow, IdentityRow, MergeRow
from loopkit.errors import AlreadyExists, FailedPrecondition, InvalidArgument, NotFound
from loopkit.events import Outbox, note_events_written

MAX_ATTRIBUTES_BYTES = 64 * 1024
AUDIT: Table = AuditRow.__table__  # type: ignore[assignment]
Clock = Callable[[], datetime]


@dataclass(frozen=True)
class IdentityView:
    key: IdentityKey
    verified: bool


@dataclass
class CustomerView:
    tenant_id: str
    customer_id: str
    status: str
    identities: list[IdentityView]
    attributes: dict[str, Any]
    created_at: datetime
    merged_ids: list[str] = field(default_factory=list)


@dataclass
class Resolution:
    customer: CustomerView
    created: bool
    merged_ids: list[str]


@dataclass(frozen=True)
class HistoryView:
    id: str
    action: str
    actor: str
    customer_id: str
    other_customer_id: str | None
    identity: IdentityKey | None
    detail: str
    at: datetime


def _utc(at: datetime) -> datetime:
    # SQLite hands back naive datetimes; everything here is UTC.
    return at if at.tzinfo is not None else at.replace(tzinfo=UTC)


def _checked(claims: list[ClaimedIdentity], attributes: dict[str, Any]) -> list[ClaimedIdentity]:
    """The claims of a valid resolve, one per identity, in lock order."""
    if not claims:
        raise InvalidArgument("at least one identity is required", field="identities")
    if len(claims) > MAX_IDENTITIES_PER_CALL:
        raise InvalidArgument(
            f"at most {MAX_IDENTITIES_PER_CALL} identities per call", field="identities"
        )
    check_attributes(attributes)
    return dedupe(claims)


def check_attributes(attributes: dict[str, Any]) -> None:
    size = len(json.dumps(attributes, ensure_ascii=False).encode())
    if size > MAX_ATTRIBUTES_BYTES:
        raise InvalidArgument(
            f"{size} bytes as JSON; at most {MAX_ATTRIBUTES_BYTES} allowed", field="attributes"
        )


class CustomerService:
    def __init__(self, outbox: Outbox, clock: Clock = lambda: datetime.now(UTC)) -> None:
        self._outbox = outbox
        self._now = clock

    # --- ResolveCustomer ------------------------------------------------------------------

    async def resolve(
        self,
        session: AsyncSession,
        tenant_id: str,
        claims: list[ClaimedIdentity],
        attributes: dict[str, Any],
        actor: str,
    ) -> Resolution:
        """Resolve in one transaction: directly where it can, else under locks."""
        quick = await self.resolve_directly(session, tenant_id, claims, attributes, actor)
        if quick is not None:
            return quick
        return await self.resolve_locked(session, tenant_id, claims, attributes, actor)

    async def resolve_directly(
        self,
        session: AsyncSession,
        tenant_id: str,
        claims: list[ClaimedIdentity],
        attributes: dict[str, Any],
        actor: str,
    ) -> Resolution | None:
        """The common cases without locks, in one or two statements: nobody holds the claims
        (create), or one customer does (answer, or attach the rest to it). None when a merge may be
        due or a pending id expired: `resolve_locked` decides those.

        Every write here is a single statement, atomic alone: it may run without a transaction
        (`loopkit.db.transact(autocommit=True)`)."""
        claims = _checked(claims, attributes)
        statements = statements_for(session)
        now = self._now()
        customer_id = str(ULID())
        created = CustomerView(tenant_id, customer_id, ACTIVE, [], dict(attributes), now)
        creation = self._creation_rows(created, claims, actor)
        holders = await statements.first_look(session, tenant_id, [c.key for c in claims], creation)
        if not holders:
            note_events_written(session)
            created.identities = [IdentityView(c.key, c.verified) for c in claims]
            return Resolution(created, True, [])
        if len(holders) > 1:
            return None
        [holder] = holders.values()
        held = holder.identities
        if any(h.expires_at is not None and h.expires_at <= now for h in held.values()):
            return None
        attach = [c for c in claims if c.key not in held]
        upgrade = [
            c.key for c in claims if c.verified and c.key in held and not held[c.key].verified
        ]
        view = CustomerView(
            tenant_id,
            holder.customer_id,
            holder.status,
            [],
            holder.attributes,
            holder.created_at,
            holder.merged_ids,
        )
        if attach or upgrade or attributes:
            rows = self._attach_rows(view, attach, actor)
            after = await statements.extend(
                session,
                tenant_id,
                holder.customer_id,
                upgrade=upgrade,
                attributes=attributes,
                now=now,
                rows=rows,
            )
            if after is None:
                return None  # merged away since the first look
            if attach:
                note_events_written(session)
            view.attributes = after
        verified = {k: h.verified for k, h in held.items()}
        verified.update({k: True for k in upgrade})
        verified.update({c.key: c.verified for c in attach})
        view.identities = [IdentityView(k, v) for k, v in sorted(verified.items())]
        return Resolution(view, False, [])

    def _creation_rows(
        self, customer: CustomerView, claims: list[ClaimedIdentity], actor: str
    ) -> Rows:
        """What creating `customer` with `claims` writes: the rows the locking path's ORM objects
        would have, and its customer.created event."""
        row = {
            "id": customer.customer_id,
            "tenant_id": customer.tenant_id,
            "status": ACTIVE,
            "merged_into": None,
            "attributes": customer.attributes,
            "created_at": customer.created_at,
            "updated_at": customer.created_at,
        }
        audit = [self._audit_row(customer, "created", actor, detail="first seen")]
        identities = []
        for claim in claims:
            identities.append(self._identity_row(customer, claim))
            audit.append(self._audit_row(customer, "identity_linked", actor, identity=claim.key))
        event = self._outbox.envelope(
            "customer.created",
            tenant_id=customer.tenant_id,
            customer_id=customer.customer_id,
            payload=ev.CustomerCreated(
                customer_id=customer.customer_id,
                identities=[identity_to_pb(c.key, c.verified) for c in claims],
            ),
        )
        return [
            (CUSTOMERS, [row]),
            (IDENTITIES, identities),
            (AUDIT, audit),
            (self._outbox.tables.outbox, [self._outbox.row(event)]),
        ]

    def _attach_rows(
        self, customer: CustomerView, claims: list[ClaimedIdentity], actor: str
    ) -> Rows:
        events = [
            self._outbox.envelope(
                "customer.identity_linked",
                tenant_id=customer.tenant_id,
                customer_id=customer.customer_id,
                payload=ev.CustomerIdentityLinked(
                    customer_id=customer.customer_id,
                    identity=identity_to_pb(c.key, c.verified),
                ),
            )
            for c in claims
        ]
        return [
            (IDENTITIES, [self._identity_row(customer, c) for c in claims]),
            (
                AUDIT,
                [
                    self._audit_row(customer, "identity_linked", actor, identity=c.key)
                    for c in claims
                ],
            ),
            (self._outbox.tables.outbox, [self._outbox.row(e) for e in events]),
        ]

    def _identity_row(self, customer: CustomerView, claim: ClaimedIdentity) -> dict[str, Any]:
        now = self._now()
        return {
            "id": str(ULID()),
            "tenant_id": customer.tenant_id,
            "customer_id": customer.customer_id,
            "kind": str(claim.key.kind),
            "scope": claim.key.scope,
            "value": claim.key.value,
            "verified": claim.verified,
            "created_at": now,
            "expires_at": now + PENDING_ID_TTL if claim.key.kind is Kind.WECOM_PENDING_ID else None,
        }

    def _audit_row(
        self,
        customer: CustomerView,
        action: str,
        actor: str,
        *,
        identity: IdentityKey | None = None,
        detail: str = "",
    ) -> dict[str, Any]:
        return {
            "id": str(ULID()),
            "tenant_id": customer.tenant_id,
            "customer_id": customer.customer_id,
            "action": action,
            "actor": actor or "unknown",
            "other_customer_id": None,
            "identity_kind": str(identity.kind) if identity else None,
            "identity_scope": identity.scope if identity else None,
            "identity_value": identity.value if identity else None,
            "detail": detail[:1000],
            "at": self._now(),
        }

    async def resolve_locked(
        self,
        session: AsyncSession,
        tenant_id: str,
        claims: list[ClaimedIdentity],
        attributes: dict[str, Any],
        actor: str,
    ) -> Resolution:
        """Any resolve, under advisory locks on the claimed identities and row locks on their
        holders: the path for merges (and the reference for what the direct path writes)."""
        claims = _checked(claims, attributes)
        repo = CustomerRepository(session)
        await repo.lock_identities(tenant_id, [c.key for c in claims])
        owners = await self._lock_owners(repo, tenant_id, [c.key for c in claims])
        # The policy only matters when several customers hold the claims.
        several = len({o.customer_id for o in owners.values()}) > 1
        policy = await self.policy(session, tenant_id) if several else MergePolicy()
        plan = plan_resolution(claims, owners, policy)
        now = self._now()
        created = plan.survivor is None
        if plan.survivor is None:
            survivor = CustomerRow(
                id=str(ULID()),
                tenant_id=tenant_id,
                status=ACTIVE,
                merged_into=None,
                attributes={},
                created_at=now,
                updated_at=now,
            )
            repo.add(survivor)
            self._audit(repo, survivor, "created", actor, detail="first seen")
        else:
            found = await repo.get(tenant_id, plan.survivor)
            assert found is not None
            survivor = found
        merged_ids: list[str] = []
        for merged_id, trigger in plan.merges:
            merged = await repo.get(tenant_id, merged_id)
            assert merged is not None
            await self._merge(
                repo,
                survivor,
                merged,
                actor=actor,
                trigger=trigger,
                reason=f"{trigger.kind} matched",
            )
            merged_ids.append(merged_id)
        for claim in plan.attach:
            await self._attach(repo, survivor, claim, actor, announce=not created)
        await self._upgrade_verification(repo, tenant_id, claims, owners)
        if attributes:
            survivor.attributes = {**survivor.attributes, **attributes}
            survivor.updated_at = now
        await repo.flush()
        if created:
            await self._outbox.emit(
                session,
                "customer.created",
                tenant_id=tenant_id,
                customer_id=survivor.id,
                payload=ev.CustomerCreated(
                    customer_id=survivor.id,
                    identities=[identity_to_pb(c.key, c.verified) for c in plan.attach],
                ),
            )
        return Resolution(await self._view(repo, survivor), created, merged_ids)

    async def _lock_owners(
        self, repo: CustomerRepository, tenant_id: str, keys: list[IdentityKey]
    ) -> dict[IdentityKey, Owner]:
        """Who holds each key, with those customers row-locked. Repeats until the holders found
        before and after locking agree (a concurrent merge may move identities in between)."""
        locked: dict[str, CustomerRow] = {}
        while True:
            rows = await repo.find_identities(tenant_id, keys)
            rows = [r for r in rows if not await self._expired(repo, r)]
            new = {r.customer_id for r in rows} - locked.keys()
            if not new:
                return {
                    IdentityKey(Kind(r.kind), r.scope, r.value): Owner(
                        r.customer_id, _utc(locked[r.customer_id].created_at)
                    )
                    for r in rows
                }
            for customer in await repo.lock_customers(new):
                locked[customer.id] = customer

    async def _expired(self, repo: CustomerRepository, row: IdentityRow) -> bool:
        """A pending id past its 90 days names nobody any more: drop it, so it can be reused."""
        if row.expires_at is None or _utc(row.expires_at) > self._now():
            return False
        await repo.delete_identity(row)
        await repo.flush()
        return True

    async def _attach(
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
        self._audit(repo, customer, "identity_linked", actor, identity=claim.key)
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

    async def _upgrade_verification(
        self,
        repo: CustomerRepository,
        tenant_id: str,
        claims: list[ClaimedIdentity],
        owners: dict[IdentityKey, Owner],
    ) -> None:
        """A known identity presented as verified (say, after an SMS code) becomes verified."""
        verified = [c.key for c in claims if c.verified and c.key in owners]
        if not verified:
            return
        for row in await repo.find_identities(tenant_id, verified):
            row.verified = True

    async def _merge(
        self,
        repo: CustomerRepository,
        survivor: CustomerRow,
        merged: CustomerRow,
        *,
        actor: str,
        trigger: IdentityKey | None,
        reason: str,
    ) -> None:
        now = self._now()
        moved = await repo.move_identities(merged.id, survivor.id)
        merged.status, merged.merged_into, merged.updated_at = MERGED, survivor.id, now
        survivor.attributes = {**merged.attributes, **survivor.attributes}
        survivor.updated_at = now
        repo.add(
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
        self._audit(
            repo, survivor, "merged", actor, other=merged.id, identity=trigger, detail=reason
        )
        self._audit(
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

    # --- reads ----------------------------------------------------------------------------

    async def get(self, session: AsyncSession, tenant_id: str, customer_id: str) -> CustomerView:
        repo = CustomerRepository(session)
        return await self._view(repo, await self._live(repo, tenant_id, customer_id))

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
                views.append(await self._view(repo, row))
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
                at=_utc(a.at),
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
        customer = await self._live(repo, tenant_id, customer_id, lock=True)
        existing = await repo.find_identities(tenant_id, [claim.key])
        existing = [r for r in existing if not await self._expired(repo, r)]
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
            await self._attach(repo, customer, claim, actor, announce=True)
        await repo.flush()
        return await self._view(repo, customer)

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
        customer = await self._live(repo, tenant_id, customer_id, lock=True)
        rows = [
            r for r in await repo.find_identities(tenant_id, [key]) if r.customer_id == customer.id
        ]
        if not rows:
            raise NotFound(
                f"customer {customer.id} has no identity {key.describe()}", field="identity"
            )
        await repo.delete_identity(rows[0])
        self._audit(repo, customer, "identity_unlinked", actor, identity=key)
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
        return await self._view(repo, customer)

    # --- MergeCustomers / UnmergeCustomer -------------------------------------------------

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
            row = await self._live(repo, tenant_id, cid)
            live[row.id] = row
        await repo.lock_customers(live)
        rows = sorted(live.values(), key=lambda r: (_utc(r.created_at), r.id))
        if any(r.status != ACTIVE for r in rows):
            raise FailedPrecondition(
                "a customer changed while merging; retry", field="customer_ids"
            )
        survivor, merged_ids = rows[0], []
        for other in rows[1:]:
            await self._merge(
                repo, survivor, other, actor=actor, trigger=None, reason=reason or "operator merge"
            )
            merged_ids.append(other.id)
        await repo.flush()
        return await self._view(repo, survivor), merged_ids

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
        record = await repo.last_merge_of(tenant_id, customer_id)
        if record is None:
            raise FailedPrecondition(f"no merge of {customer_id} to undo", field="customer_id")
        holder = await self._live(repo, tenant_id, record.survivor_id)
        locked = {c.id: c for c in await repo.lock_customers([holder.id, merged.id])}
        holder, merged = locked[holder.id], locked[merged.id]
        now = self._now()
        await repo.move_identity_ids(record.moved_identity_ids, holder.id, merged.id)
        merged.status, merged.merged_into, merged.updated_at = ACTIVE, None, now
        record.undone_at = now
        why = reason or "operator unmerge"
        self._audit(repo, merged, "unmerged", actor, other=holder.id, detail=why)
        self._audit(repo, holder, "unmerged_from", actor, other=merged.id, detail=why)
        await repo.flush()
        await self._outbox.emit(
            session,
            "customer.unmerged",
            tenant_id=tenant_id,
            customer_id=merged.id,
            payload=ev.CustomerUnmerged(restored_id=merged.id, survivor_id=holder.id, reason=why),
        )
        return await self._view(repo, merged), await self._view(repo, holder)

    # --- ForgetCustomer -------------------------------------------------------------------

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
        for cid in ids:
            customer = await repo.get(tenant_id, cid)
            assert customer is not None
            customer.status, customer.attributes, customer.updated_at = FORGOTTEN, {}, now
        self._audit(repo, live, "forgotten", actor, detail=reason or "erasure request")
        await repo.flush()
        await self._outbox.emit(
            session,
            "customer.forgotten",
            tenant_id=tenant_id,
            customer_id=live.id,
            payload=ev.CustomerForgotten(customer_id=live.id, forgotten_ids=ids),
        )
        return ids

    # --- merge policy ---------------------------------------------------------------------

    async def policy(self, session: AsyncSession, tenant_id: str) -> MergePolicy:
        row = await CustomerRepository(session).policy(tenant_id)
        if row is None:
            return MergePolicy()
        return MergePolicy(
            frozenset(Kind(k) for k in row.merge_kinds), row.phone_requires_verification
        )

    async def set_policy(
        self, session: AsyncSession, tenant_id: str, policy: MergePolicy
    ) -> MergePolicy:
        kinds = sorted(str(k) for k in (policy.merge_kinds or DEFAULT_MERGE_KINDS))
        await CustomerRepository(session).save_policy(
            tenant_id, kinds, policy.phone_requires_verification, self._now()
        )
        return await self.policy(session, tenant_id)

    # --- helpers --------------------------------------------------------------------------

    async def _live(
        self, repo: CustomerRepository, tenant_id: str, customer_id: str, *, lock: bool = False
    ) -> CustomerRow:
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
                return await self._live(repo, tenant_id, row.id, lock=True)
        return row

    async def _view(self, repo: CustomerRepository, row: CustomerRow) -> CustomerView:
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
            created_at=_utc(row.created_at),
            merged_ids=await repo.merged_into(row.tenant_id, row.id),
        )

    def _audit(
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
