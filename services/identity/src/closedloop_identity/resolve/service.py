"""ResolveCustomer: which customer the claimed identities name, creating, attaching or merging as
the policy allows. Two paths (docs/services/identity.md): the direct one (`statements.py`, one
statement per step, no locks) for the common cases, and the locking one for a possible merge or
an expired pending id. Never commits."""

from __future__ import annotations

import json
from typing import Any

from sqlalchemy import Table
from sqlalchemy.ext.asyncio import AsyncSession

from closedloop.events.v1 import identity_events_pb2 as ev
from closedloop_identity.clock import Clock, system_clock
from closedloop_identity.customers.contracts import identity_to_pb
from closedloop_identity.customers.identities import (
    MAX_IDENTITIES_PER_CALL,
    PENDING_ID_TTL,
    ClaimedIdentity,
    IdentityKey,
    Kind,
    dedupe,
)
from closedloop_identity.customers.repository import ACTIVE, CustomerRepository
from closedloop_identity.customers.service import CustomerService
from closedloop_identity.customers.views import CustomerView, IdentityView, utc
from closedloop_identity.keys.service import KeysKnown
from closedloop_identity.merges.service import MergeService
from closedloop_identity.models import AuditRow, CustomerKeyRow, CustomerRow
from closedloop_identity.policies.policy import MergePolicy
from closedloop_identity.policies.service import PolicyService
from closedloop_identity.resolve.resolution import Owner, plan_resolution
from closedloop_identity.resolve.statements import (
    CUSTOMERS,
    IDENTITIES,
    Holder,
    Rows,
    statements_for,
)
from closedloop_identity.resolve.views import Resolution
from loopkit.errors import InvalidArgument
from loopkit.events import Outbox, note_events_written
from loopkit.ids import new_ulid
from loopkit.pii import new_key
from loopkit.uow import on_commit

MAX_ATTRIBUTES_BYTES = 64 * 1024
AUDIT: Table = AuditRow.__table__  # type: ignore[assignment]
CUSTOMER_KEYS: Table = CustomerKeyRow.__table__  # type: ignore[assignment]


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


class HeldClaims:
    """Identities this process recently saw held by a customer (at most `size`, the oldest
    forgotten first). A resolve whose every claim is here most likely finds its customer, so its
    first look goes without the rows of a creation: building them (ids, audit rows, the event,
    a data key, their JSON) was the largest Python cost of a repeat resolve that writes nothing.
    Only a hint: the first look decides, and when nobody holds the claims after all (forgotten
    or unlinked since) it runs again with the creation. It keeps a hash of each identity, not
    the identity: an erased customer's phone or openid stays in no process after its erasure
    (a collision only costs a creating resolve its second look)."""

    def __init__(self, size: int = 50_000) -> None:
        self._size = size
        self._seen: dict[int, None] = {}

    def all_held(self, tenant_id: str, keys: list[IdentityKey]) -> bool:
        return all(hash((tenant_id, k)) in self._seen for k in keys)

    def add(self, tenant_id: str, keys: list[IdentityKey]) -> None:
        for key in keys:
            if len(self._seen) >= self._size:
                del self._seen[next(iter(self._seen))]
            self._seen[hash((tenant_id, key))] = None


class ResolveService:
    def __init__(
        self,
        outbox: Outbox,
        customers: CustomerService,
        merges: MergeService,
        policies: PolicyService,
        clock: Clock = system_clock,
        *,
        keys_known: KeysKnown | None = None,
    ) -> None:
        self._outbox = outbox
        self._keys_known = keys_known
        self._customers = customers
        self._merges = merges
        self._policies = policies
        self._now = clock
        self._held = HeldClaims()

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
        (`loopkit.db.transact(autocommit=True)`). Claims this process saw held recently are
        looked up without the creation's rows first (`HeldClaims`)."""
        claims = _checked(claims, attributes)
        statements = statements_for(session)
        now = self._now()
        keys = [c.key for c in claims]
        holders: dict[str, Holder] = {}
        if self._held.all_held(tenant_id, keys):
            holders = await statements.first_look(session, tenant_id, keys, [])
        if not holders:
            customer_id = new_ulid()
            created = CustomerView(tenant_id, customer_id, ACTIVE, [], dict(attributes), now)
            key = new_key()
            creation = self._creation_rows(created, claims, actor, key)
            holders = await statements.first_look(session, tenant_id, keys, creation)
        if not holders:
            self._held.add(tenant_id, keys)
            note_events_written(session)
            if self._keys_known is not None:
                known = self._keys_known
                on_commit(session, lambda: known(tenant_id, {customer_id: key}))
            created.identities = [IdentityView(c.key, c.verified) for c in claims]
            return Resolution(created, True, [], key=key)
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
        self._held.add(tenant_id, keys)
        return Resolution(view, False, [])

    def _creation_rows(
        self, customer: CustomerView, claims: list[ClaimedIdentity], actor: str, key: bytes
    ) -> Rows:
        """What creating `customer` with `claims` writes: the rows the locking path's ORM objects
        would have, its customer.created event, and its data key (loopkit.pii; the locking path
        leaves that to the first `KeyService.keys`)."""
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
            (
                CUSTOMER_KEYS,
                [
                    {
                        "tenant_id": customer.tenant_id,
                        "customer_id": customer.customer_id,
                        "key": key,
                        "created_at": customer.created_at,
                        "erased_at": None,
                    }
                ],
            ),
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
            "id": new_ulid(),
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
            "id": new_ulid(),
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
        policy = await self._policies.get(session, tenant_id) if several else MergePolicy()
        plan = plan_resolution(claims, owners, policy)
        now = self._now()
        created = plan.survivor is None
        if plan.survivor is None:
            survivor = CustomerRow(
                id=new_ulid(),
                tenant_id=tenant_id,
                status=ACTIVE,
                merged_into=None,
                attributes={},
                created_at=now,
                updated_at=now,
            )
            repo.add(survivor)
            self._customers.audit(repo, survivor, "created", actor, detail="first seen")
        else:
            found = await repo.get(tenant_id, plan.survivor)
            assert found is not None
            survivor = found
        merged_ids: list[str] = []
        for merged_id, trigger in plan.merges:
            merged = await repo.get(tenant_id, merged_id)
            assert merged is not None
            await self._merges.merge_into(
                repo,
                survivor,
                merged,
                actor=actor,
                trigger=trigger,
                reason=f"{trigger.kind} matched",
            )
            merged_ids.append(merged_id)
        for claim in plan.attach:
            await self._customers.attach(repo, survivor, claim, actor, announce=not created)
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
        return Resolution(await self._customers.view(repo, survivor), created, merged_ids)

    async def _lock_owners(
        self, repo: CustomerRepository, tenant_id: str, keys: list[IdentityKey]
    ) -> dict[IdentityKey, Owner]:
        """Who holds each key, with those customers row-locked. Repeats until the holders found
        before and after locking agree (a concurrent merge may move identities in between)."""
        locked: dict[str, CustomerRow] = {}
        while True:
            rows = await repo.find_identities(tenant_id, keys)
            rows = [r for r in rows if not await self._customers.drop_if_expired(repo, r)]
            new = {r.customer_id for r in rows} - locked.keys()
            if not new:
                return {
                    IdentityKey(Kind(r.kind), r.scope, r.value): Owner(
                        r.customer_id, utc(locked[r.customer_id].created_at)
                    )
                    for r in rows
                }
            for customer in await repo.lock_customers(new):
                locked[customer.id] = customer

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
