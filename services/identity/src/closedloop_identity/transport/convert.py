"""Protobuf <-> domain for the identity API."""

from __future__ import annotations

from typing import Any

from google.protobuf import json_format
from google.protobuf.struct_pb2 import Struct

from closedloop.common.v1 import common_pb2
from closedloop.identity.v1 import identity_pb2 as pb
from closedloop_identity.customers.contracts import identity_to_pb, kind_name, kind_to_pb
from closedloop_identity.customers.identities import ClaimedIdentity, Kind, normalise
from closedloop_identity.customers.views import CustomerView, HistoryView
from closedloop_identity.policies.policy import MergePolicy
from loopkit.errors import InvalidArgument
from loopkit.timestamps import to_timestamp

_STATUS = {
    "active": pb.CUSTOMER_STATUS_ACTIVE,
    "merged": pb.CUSTOMER_STATUS_MERGED,
    "forgotten": pb.CUSTOMER_STATUS_FORGOTTEN,
}


def kind_from_pb(value: int, *, field: str) -> Kind:
    kind = kind_name(value)
    if kind is None:
        raise InvalidArgument(f"unknown identity kind {value}", field=field)
    return kind


def claim_from_pb(identity: common_pb2.Identity, *, field: str) -> ClaimedIdentity:
    kind = kind_from_pb(identity.kind, field=f"{field}.kind")
    return ClaimedIdentity(
        normalise(kind, identity.scope, identity.value, field=field), identity.verified
    )


def claims_from_pb(identities: Any, *, field: str = "identities") -> list[ClaimedIdentity]:
    return [claim_from_pb(i, field=f"{field}[{n}]") for n, i in enumerate(identities)]


def attributes_from_pb(struct: Struct) -> dict[str, Any]:
    # Most resolves bring none: MessageToDict walks the message in Python even when it is empty.
    return json_format.MessageToDict(struct) if struct.fields else {}


timestamp = to_timestamp  # the kit's integer conversion (FromDatetime costs a few times more)


def customer_to_pb(view: CustomerView) -> pb.Customer:
    attributes = Struct()
    if view.attributes:
        attributes.update(view.attributes)
    return pb.Customer(
        tenant_id=view.tenant_id,
        customer_id=view.customer_id,
        status=_STATUS[view.status],
        identities=[identity_to_pb(i.key, i.verified) for i in view.identities],
        attributes=attributes,
        created_at=timestamp(view.created_at),
        merged_ids=view.merged_ids,
    )


def history_to_pb(entry: HistoryView) -> pb.HistoryEntry:
    return pb.HistoryEntry(
        id=entry.id,
        action=entry.action,
        actor=entry.actor,
        customer_id=entry.customer_id,
        other_customer_id=entry.other_customer_id or "",
        identity=identity_to_pb(entry.identity) if entry.identity else None,
        detail=entry.detail,
        at=timestamp(entry.at),
    )


def policy_from_pb(policy: pb.MergePolicy) -> MergePolicy:
    kinds = frozenset(
        kind_from_pb(k, field=f"policy.merge_kinds[{n}]") for n, k in enumerate(policy.merge_kinds)
    )
    return MergePolicy(kinds, policy.phone_requires_verification)


def policy_to_pb(policy: MergePolicy) -> pb.MergePolicy:
    return pb.MergePolicy(
        merge_kinds=[kind_to_pb(k) for k in sorted(policy.merge_kinds)],
        phone_requires_verification=policy.phone_requires_verification,
    )
