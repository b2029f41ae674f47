"""The IdentityService gRPC servicer: request -> domain arguments -> one unit of work around one use
case -> response. Nothing else (no rows, no rules). The calls that only read run `UnitOfWork.read`
(on SQLite they never wait for a writer); GetCustomerKeys writes a missing key, so it `run`s."""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from dataclasses import dataclass

import grpc

from closedloop.identity.v1 import identity_pb2 as pb
from closedloop.identity.v1 import identity_pb2_grpc
from closedloop_identity.customers.contracts import identity_to_pb
from closedloop_identity.customers.identities import Kind, normalise, normalise_phone
from closedloop_identity.customers.service import CustomerService
from closedloop_identity.erasure.service import ErasureService
from closedloop_identity.keys.service import KeyService
from closedloop_identity.merges.service import MergeService
from closedloop_identity.policies.service import PolicyService
from closedloop_identity.resolve.service import ResolveService
from closedloop_identity.transport import convert
from loopkit.errors import InvalidArgument
from loopkit.tenancy import internal_caller, require_tenant
from loopkit.uow import UnitOfWork

SERVICE_NAME = pb.DESCRIPTOR.services_by_name["IdentityService"].full_name
# Safe to retry: repeating them changes nothing the first call did not.
IDEMPOTENT_METHODS = [
    (SERVICE_NAME, m)
    for m in (
        "ResolveCustomer",
        "GetCustomer",
        "ListIdentities",
        "LinkIdentity",
        "SearchCustomers",
        "GetCustomerHistory",
        "GetMergePolicy",
        "SetMergePolicy",
        "ForgetCustomer",
        "GetCustomerKeys",
    )
]
MAX_SEARCH_RESULTS = 100


@dataclass(frozen=True)
class UseCases:
    """The identity domain as the servicer sees it (built in main.py)."""

    customers: CustomerService
    resolve: ResolveService
    merges: MergeService
    erasure: ErasureService
    policies: PolicyService
    keys: KeyService


class IdentityServicer(identity_pb2_grpc.IdentityServiceServicer):
    def __init__(self, uow: UnitOfWork, domain: UseCases) -> None:
        self._uow = uow
        self._customers = domain.customers
        self._resolve = domain.resolve
        self._merges = domain.merges
        self._erasure = domain.erasure
        self._policies = domain.policies
        self._keys = domain.keys

    async def ResolveCustomer(
        self, request: pb.ResolveCustomerRequest, context: grpc.aio.ServicerContext
    ) -> pb.ResolveCustomerResponse:
        tenant = require_tenant(request.tenant_id)
        claims = convert.claims_from_pb(request.identities)
        attributes = convert.attributes_from_pb(request.attributes)
        # The common cases first, without a transaction (each of their writes is one atomic
        # statement); a possible merge then runs in a transaction under locks.
        quick = await self._uow.run(
            lambda s: self._resolve.resolve_directly(s, tenant, claims, attributes, request.actor),
            autocommit=True,
        )
        result = quick
        if result is None:
            result = await self._uow.run(
                lambda s: self._resolve.resolve_locked(s, tenant, claims, attributes, request.actor)
            )
        return pb.ResolveCustomerResponse(
            customer=convert.customer_to_pb(result.customer),
            created=result.created,
            merged_ids=result.merged_ids,
            # GetCustomerKeys' answer, to the callers that may ask it (their relays seal with it).
            customer_key=result.key if result.created and internal_caller() else b"",
        )

    async def GetCustomer(
        self, request: pb.GetCustomerRequest, context: grpc.aio.ServicerContext
    ) -> pb.GetCustomerResponse:
        tenant = require_tenant(request.tenant_id)
        view = await self._uow.read(lambda s: self._customers.get(s, tenant, request.customer_id))
        requested = request.customer_id if request.customer_id != view.customer_id else ""
        return pb.GetCustomerResponse(customer=convert.customer_to_pb(view), requested_id=requested)

    async def ListIdentities(
        self, request: pb.ListIdentitiesRequest, context: grpc.aio.ServicerContext
    ) -> pb.ListIdentitiesResponse:
        tenant = require_tenant(request.tenant_id)
        view = await self._uow.read(lambda s: self._customers.get(s, tenant, request.customer_id))
        return pb.ListIdentitiesResponse(
            identities=[identity_to_pb(i.key, i.verified) for i in view.identities]
        )

    async def LinkIdentity(
        self, request: pb.LinkIdentityRequest, context: grpc.aio.ServicerContext
    ) -> pb.LinkIdentityResponse:
        tenant = require_tenant(request.tenant_id)
        claim = convert.claim_from_pb(request.identity, field="identity")
        view = await self._uow.run(
            lambda s: self._customers.link(s, tenant, request.customer_id, claim, request.actor)
        )
        return pb.LinkIdentityResponse(customer=convert.customer_to_pb(view))

    async def UnlinkIdentity(
        self, request: pb.UnlinkIdentityRequest, context: grpc.aio.ServicerContext
    ) -> pb.UnlinkIdentityResponse:
        tenant = require_tenant(request.tenant_id)
        claim = convert.claim_from_pb(request.identity, field="identity")
        view = await self._uow.run(
            lambda s: self._customers.unlink(
                s, tenant, request.customer_id, claim.key, request.actor
            )
        )
        return pb.UnlinkIdentityResponse(customer=convert.customer_to_pb(view))

    async def MergeCustomers(
        self, request: pb.MergeCustomersRequest, context: grpc.aio.ServicerContext
    ) -> pb.MergeCustomersResponse:
        tenant = require_tenant(request.tenant_id)
        survivor, merged = await self._uow.run(
            lambda s: self._merges.merge(
                s, tenant, list(request.customer_ids), request.actor, request.reason
            )
        )
        return pb.MergeCustomersResponse(
            survivor=convert.customer_to_pb(survivor), merged_ids=merged
        )

    async def UnmergeCustomer(
        self, request: pb.UnmergeCustomerRequest, context: grpc.aio.ServicerContext
    ) -> pb.UnmergeCustomerResponse:
        tenant = require_tenant(request.tenant_id)
        restored, survivor = await self._uow.run(
            lambda s: self._merges.unmerge(
                s, tenant, request.customer_id, request.actor, request.reason
            )
        )
        return pb.UnmergeCustomerResponse(
            restored=convert.customer_to_pb(restored), survivor=convert.customer_to_pb(survivor)
        )

    async def ForgetCustomer(
        self, request: pb.ForgetCustomerRequest, context: grpc.aio.ServicerContext
    ) -> pb.ForgetCustomerResponse:
        tenant = require_tenant(request.tenant_id)
        ids = await self._uow.run(
            lambda s: self._erasure.forget(
                s, tenant, request.customer_id, request.actor, request.reason
            )
        )
        return pb.ForgetCustomerResponse(customer_id=ids[0], forgotten_ids=ids)

    async def GetCustomerKeys(
        self, request: pb.GetCustomerKeysRequest, context: grpc.aio.ServicerContext
    ) -> pb.GetCustomerKeysResponse:
        tenant = require_tenant(request.tenant_id)
        keys = await self._uow.run(
            lambda s: self._keys.keys(s, tenant, list(request.customer_ids)), autocommit=True
        )
        return pb.GetCustomerKeysResponse(
            keys=[
                pb.CustomerKey(customer_id=cid, key=key or b"", erased=key is None)
                for cid, key in keys.items()
            ]
        )

    async def SearchCustomers(
        self, request: pb.SearchCustomersRequest, context: grpc.aio.ServicerContext
    ) -> pb.SearchCustomersResponse:
        tenant = require_tenant(request.tenant_id)
        if not request.value.strip():
            raise InvalidArgument("a value to search for is required", field="value")
        limit = min(request.limit or 20, MAX_SEARCH_RESULTS)
        candidates = _search_candidates(request.kind, request.value)
        views = await self._uow.read(lambda s: self._customers.search(s, tenant, candidates, limit))
        return pb.SearchCustomersResponse(customers=[convert.customer_to_pb(v) for v in views])

    async def GetCustomerHistory(
        self, request: pb.GetCustomerHistoryRequest, context: grpc.aio.ServicerContext
    ) -> pb.GetCustomerHistoryResponse:
        tenant = require_tenant(request.tenant_id)
        entries = await self._uow.read(
            lambda s: self._customers.history(s, tenant, request.customer_id)
        )
        return pb.GetCustomerHistoryResponse(entries=[convert.history_to_pb(e) for e in entries])

    async def GetMergePolicy(
        self, request: pb.GetMergePolicyRequest, context: grpc.aio.ServicerContext
    ) -> pb.GetMergePolicyResponse:
        tenant = require_tenant(request.tenant_id)
        policy = await self._uow.read(lambda s: self._policies.get(s, tenant))
        return pb.GetMergePolicyResponse(policy=convert.policy_to_pb(policy))

    async def SetMergePolicy(
        self, request: pb.SetMergePolicyRequest, context: grpc.aio.ServicerContext
    ) -> pb.SetMergePolicyResponse:
        tenant = require_tenant(request.tenant_id)
        policy = convert.policy_from_pb(request.policy)
        saved = await self._uow.run(lambda s: self._policies.set(s, tenant, policy))
        return pb.SetMergePolicyResponse(policy=convert.policy_to_pb(saved))


def _search_candidates(kind_pb: int, raw: str) -> list[tuple[str | None, str]]:
    """(kind, value) pairs to look for: the value as a given kind, or as any kind."""
    value = raw.strip()
    if kind_pb:
        kind = convert.kind_from_pb(kind_pb, field="kind")
        scoped = normalise(kind, "-", value, field="value")  # scope is not part of a search
        return [(str(kind), scoped.value)]
    candidates: list[tuple[str | None, str]] = [(None, value)]
    if "@" in value:
        candidates.append((str(Kind.EMAIL), value.lower()))
    with contextlib.suppress(ValueError):
        candidates.append((str(Kind.PHONE), normalise_phone(value)))
    return candidates


def register(servicer: IdentityServicer) -> Callable[[grpc.aio.Server], None]:
    def add(server: grpc.aio.Server) -> None:
        identity_pb2_grpc.add_IdentityServiceServicer_to_server(servicer, server)  # type: ignore[no-untyped-call]

    return add
