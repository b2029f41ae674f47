"""The decision at the heart of ResolveCustomer, as a pure function: create, attach or merge."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from closedloop_identity.customers.identities import ClaimedIdentity, IdentityKey
from closedloop_identity.policies.policy import MergePolicy
from loopkit.errors import FailedPrecondition


@dataclass(frozen=True)
class Owner:
    """A live customer that already holds one of the claimed identities."""

    customer_id: str
    created_at: datetime


@dataclass
class Plan:
    # None: create a new customer.
    survivor: str | None
    # Customers to merge into the survivor, each with the identity that justified it.
    merges: list[tuple[str, IdentityKey]] = field(default_factory=list)
    # Claimed identities nobody holds yet: attach them to the survivor (or the new customer).
    attach: list[ClaimedIdentity] = field(default_factory=list)


def plan_resolution(
    claims: list[ClaimedIdentity], owners: dict[IdentityKey, Owner], policy: MergePolicy
) -> Plan:
    """Decide what resolving `claims` does, given who holds which of them.

    Several customers merge only when each of them but at most one was matched through an identity
    the tenant's policy lets merge; two customers matched only through weak identities (say two
    openids) are ambiguous, and the call is refused rather than guessing.
    """
    attach = [c for c in claims if c.key not in owners]
    matched: dict[str, Owner] = {o.customer_id: o for o in owners.values()}
    if not matched:
        return Plan(survivor=None, attach=attach)
    strong: dict[str, IdentityKey] = {}
    for claim in claims:
        owner = owners.get(claim.key)
        if owner is not None and policy.may_merge(claim) and owner.customer_id not in strong:
            strong[owner.customer_id] = claim.key
    weak_only = sorted(cid for cid in matched if cid not in strong)
    if len(weak_only) > 1:
        raise FailedPrecondition(
            "the identities belong to different customers "
            f"({', '.join(weak_only)}) and none of the matching kinds may merge under this "
            "tenant's merge policy; merge them explicitly with MergeCustomers",
            field="identities",
        )
    ordered = sorted(matched.values(), key=lambda o: (o.created_at, o.customer_id))
    survivor = ordered[0].customer_id
    # A weakly matched customer merges on the strength of the identity that matched another one.
    any_strong = next(iter(strong.values()), None)
    merges = []
    for owner in ordered[1:]:
        trigger = strong.get(owner.customer_id) or strong.get(survivor) or any_strong
        assert trigger is not None  # at most one customer is weak-only, so some match is strong
        merges.append((owner.customer_id, trigger))
    return Plan(survivor=survivor, merges=merges, attach=attach)
