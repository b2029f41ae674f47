"""`CustomerDirectory` over gRPC: the identity service as every other service calls it."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import grpc
from google.protobuf.struct_pb2 import Struct

from closedloop.common.v1 import common_pb2
from closedloop.identity.v1 import identity_pb2, identity_pb2_grpc
from loopkit import errors
from loopkit.customers import IdentityValue, KnownCustomer, ResolvedCustomer
from loopkit.grpc_client import DOMAIN_ERRORS, make_channel, translate_error
from loopkit.settings import Settings

SERVICE = "closedloop.identity.v1.IdentityService"
_RETRIED = [
    (SERVICE, m) for m in ("ResolveCustomer", "GetCustomer", "ListIdentities", "GetCustomerKeys")
]

# What identity answers while it is out (or draining): the same call can work a moment later.
_TRANSIENT = {
    grpc.StatusCode.UNAVAILABLE,
    grpc.StatusCode.DEADLINE_EXCEEDED,
    grpc.StatusCode.RESOURCE_EXHAUSTED,
    grpc.StatusCode.CANCELLED,
}


class IdentityFailed(Exception):
    """Identity answered with an error that is neither a domain error nor an outage (a bug)."""


# The enum's names and numbers, looked up once (the wrapper's keys() and values() build a new
# list on every call, twice per identity of every resolve).
_KIND_NUMBERS: dict[str, int] = {
    name.removeprefix("IDENTITY_KIND_").lower(): number
    for name, number in common_pb2.IdentityKind.items()
}
_KIND_NAMES: dict[int, str] = {number: name for name, number in _KIND_NUMBERS.items()}


def identity_to_pb(identity: IdentityValue) -> common_pb2.Identity:
    kind = _KIND_NUMBERS.get(identity.kind)
    if kind is None:
        kind = _KIND_NUMBERS.get(identity.kind.lower())
        if kind is None:
            raise errors.InvalidArgument(f"unknown identity kind {identity.kind!r}", field="kind")
    return common_pb2.Identity(
        kind=kind,  # type: ignore[arg-type]
        scope=identity.scope,
        value=identity.value,
        verified=identity.verified,
    )


def identity_from_pb(pb: common_pb2.Identity, field: str = "kind") -> IdentityValue:
    kind = _KIND_NAMES.get(pb.kind)
    if kind is None:
        # An open enum: a caller with a newer (or made-up) schema can send any number.
        raise errors.InvalidArgument(f"unknown identity kind {pb.kind}", field=field)
    return IdentityValue(kind=kind, value=pb.value, scope=pb.scope, verified=pb.verified)


def _translate(exc: grpc.aio.AioRpcError) -> Exception:
    code = exc.code()
    if code in DOMAIN_ERRORS or code in _TRANSIENT:
        return translate_error(exc, "identity service")
    # INTERNAL, UNIMPLEMENTED, ...: identity answered, and it is not an outage. Retrying forever
    # (or telling our own caller to retry) would hide a bug; it counts as a failure.
    return IdentityFailed(f"identity service: {code.name} ({exc.details()})")


# Told the data key identity handed back with a customer it created (tenant, {customer: key}):
# the service runtime's `remember_pii_keys`, so its relay does not ask GetCustomerKeys for it.
KeysKnown = Callable[[str, Mapping[str, bytes | None]], None]


class IdentityClient:
    """Resolves customers through the identity service; errors come back as domain errors."""

    def __init__(
        self, channel: grpc.aio.Channel, *, actor: str = "", keys_known: KeysKnown | None = None
    ) -> None:
        self._channel = channel
        stub = identity_pb2_grpc.IdentityServiceStub
        self._stub = stub(channel)  # type: ignore[no-untyped-call]
        self._actor = actor
        self._keys_known = keys_known

    @classmethod
    def from_settings(
        cls, settings: Settings, *, keys_known: KeysKnown | None = None
    ) -> IdentityClient:
        token = settings.api_token.get_secret_value() if settings.api_token else None
        channel = make_channel(
            settings.identity_url,
            idempotent=_RETRIED,
            default_timeout_s=settings.identity_timeout_s,
            api_token=token,
        )
        return cls(channel, actor=settings.service, keys_known=keys_known)

    async def close(self) -> None:
        await self._channel.close()

    async def resolve(
        self,
        tenant_id: str,
        identities: Sequence[IdentityValue],
        *,
        attributes: Mapping[str, Any] | None = None,
        actor: str = "",
    ) -> ResolvedCustomer:
        request = identity_pb2.ResolveCustomerRequest(
            tenant_id=tenant_id,
            identities=[identity_to_pb(i) for i in identities],
            actor=actor or self._actor,
        )
        if attributes:
            struct = Struct()
            struct.update(dict(attributes))
            request.attributes.CopyFrom(struct)
        try:
            answer = await self._stub.ResolveCustomer(
                request, metadata=[("x-tenant-id", tenant_id)]
            )
        except grpc.aio.AioRpcError as exc:
            raise _translate(exc) from None
        if answer.customer_key and self._keys_known is not None:
            self._keys_known(tenant_id, {answer.customer.customer_id: answer.customer_key})
        return ResolvedCustomer(
            customer_id=answer.customer.customer_id,
            created=answer.created,
            merged_ids=tuple(answer.merged_ids),
            identities=tuple(identity_from_pb(i) for i in answer.customer.identities),
        )

    async def current_id(self, tenant_id: str, customer_id: str) -> str:
        request = identity_pb2.GetCustomerRequest(tenant_id=tenant_id, customer_id=customer_id)
        try:
            answer = await self._stub.GetCustomer(request, metadata=[("x-tenant-id", tenant_id)])
        except grpc.aio.AioRpcError as exc:
            raise _translate(exc) from None
        return str(answer.customer.customer_id)

    async def customer(self, tenant_id: str, customer_id: str) -> KnownCustomer:
        """The live customer behind an id (a `loopkit.customers.CustomerLookup`)."""
        request = identity_pb2.GetCustomerRequest(tenant_id=tenant_id, customer_id=customer_id)
        try:
            answer = await self._stub.GetCustomer(request, metadata=[("x-tenant-id", tenant_id)])
        except grpc.aio.AioRpcError as exc:
            raise _translate(exc) from None
        found = answer.customer
        return KnownCustomer(
            customer_id=found.customer_id,
            requested_id=answer.requested_id,
            merged_ids=tuple(found.merged_ids),
            identities=tuple(identity_from_pb(i) for i in found.identities),
        )

    async def keys(self, tenant_id: str, customer_ids: Sequence[str]) -> dict[str, bytes | None]:
        """The data keys that seal these customers' personal data in events (`loopkit.pii`):
        None for a forgotten customer. A `loopkit.pii.KeySource`."""
        request = identity_pb2.GetCustomerKeysRequest(
            tenant_id=tenant_id, customer_ids=list(customer_ids)
        )
        try:
            answer = await self._stub.GetCustomerKeys(
                request, metadata=[("x-tenant-id", tenant_id)]
            )
        except grpc.aio.AioRpcError as exc:
            raise _translate(exc) from None
        return {k.customer_id: (None if k.erased else bytes(k.key)) for k in answer.keys}
