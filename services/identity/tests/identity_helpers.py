"""Builders for identity requests, so tests read like the scenario they check."""

from __future__ import annotations

from collections.abc import Sequence

from google.protobuf.struct_pb2 import Struct

from closedloop.common.v1 import common_pb2 as c
from closedloop.events.v1.envelope_pb2 import Envelope
from closedloop.identity.v1 import identity_pb2 as pb
from closedloop.identity.v1 import identity_pb2_grpc
from loopkit import pii

APP = "wx-app-1"
CORP = "ww-corp-1"


def openid(value: str, app: str = APP) -> c.Identity:
    return c.Identity(kind=c.IDENTITY_KIND_WECHAT_OPENID, scope=app, value=value)


def unionid(value: str, verified: bool = False) -> c.Identity:
    """A unionid; `verified` when it came from WeChat itself (OAuth, a signed callback)."""
    return c.Identity(kind=c.IDENTITY_KIND_WECHAT_UNIONID, value=value, verified=verified)


def phone(value: str, verified: bool = True) -> c.Identity:
    return c.Identity(kind=c.IDENTITY_KIND_PHONE, value=value, verified=verified)


def external_userid(value: str, corp: str = CORP) -> c.Identity:
    return c.Identity(kind=c.IDENTITY_KIND_WECOM_EXTERNAL_USERID, scope=corp, value=value)


def pending_id(value: str, corp: str = CORP) -> c.Identity:
    return c.Identity(kind=c.IDENTITY_KIND_WECOM_PENDING_ID, scope=corp, value=value)


def resolve_request(
    tenant: str, *identities: c.Identity, **attributes: object
) -> pb.ResolveCustomerRequest:
    attrs = Struct()
    attrs.update(attributes)
    return pb.ResolveCustomerRequest(
        tenant_id=tenant, identities=list(identities), attributes=attrs, actor="test"
    )


def keys(customer: pb.Customer) -> set[tuple[int, str, str]]:
    return {(i.kind, i.scope, i.value) for i in customer.identities}


class ServiceKeys:
    """Data keys asked of the identity under test, as every other service's consumers ask."""

    def __init__(self, stub: identity_pb2_grpc.IdentityServiceStub) -> None:
        self._stub = stub

    async def keys(self, tenant_id: str, customer_ids: Sequence[str]) -> dict[str, bytes | None]:
        answer = await self._stub.GetCustomerKeys(
            pb.GetCustomerKeysRequest(tenant_id=tenant_id, customer_ids=list(customer_ids))
        )
        return {k.customer_id: (None if k.erased else k.key) for k in answer.keys}


async def opened(stub: identity_pb2_grpc.IdentityServiceStub, env: Envelope) -> Envelope:
    """The event with its sealed personal values opened (loopkit.pii)."""
    await pii.Opener(pii.CachedKeys(ServiceKeys(stub))).open(env)
    return env
