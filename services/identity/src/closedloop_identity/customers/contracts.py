"""Domain identities as the protobuf contract spells them (for events and the API alike)."""

from __future__ import annotations

from closedloop.common.v1 import common_pb2
from closedloop_identity.customers.identities import IdentityKey, Kind

_PREFIX = "IDENTITY_KIND_"


def kind_to_pb(kind: Kind) -> str:
    """The enum value's name, which protobuf accepts wherever the enum is expected."""
    return _PREFIX + kind.upper()


def kind_name(value: int) -> Kind | None:
    """The domain kind of a protobuf enum value; None for unspecified or unknown values."""
    try:
        name = common_pb2.IdentityKind.Name(value)
    except ValueError:
        return None
    if value == common_pb2.IDENTITY_KIND_UNSPECIFIED:
        return None
    return Kind(name.removeprefix(_PREFIX).lower())


def identity_to_pb(key: IdentityKey, verified: bool = False) -> common_pb2.Identity:
    return common_pb2.Identity(
        kind=kind_to_pb(key.kind), scope=key.scope, value=key.value, verified=verified
    )
