"""WeCom's customer-contact APIs as domain code sees them: ports, free of transport.

Conversion looks up the person behind a friend-add (their unionid ties them to the official
account's follower) and hands a rep's customers to another rep. `loopkit.gateway_client` implements
both ports over the gateway's gRPC API; the gateway calls WeCom.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Protocol


@dataclass(frozen=True)
class ExternalContact:
    """WeCom's record of an external contact (externalcontact/get)."""

    corp_id: str
    external_userid: str
    # Empty unless the corp is bound to an open platform and the contact is a WeChat user.
    unionid: str
    name: str
    # A WeChat user (the usual customer), not a WeCom user of another corp.
    wechat_user: bool
    # The reps who have this contact as a friend.
    follow_userids: tuple[str, ...] = ()


class ContactLookup(Protocol):
    async def external_contact(
        self, tenant_id: str, corp_id: str, external_userid: str
    ) -> ExternalContact:
        """WeCom's record of the contact.

        Raises NotFound (no such contact), InvalidArgument, PermissionDenied (the corp is not the
        tenant's) or DependencyUnavailable (retry later).
        """
        ...


# WeCom's answer for a customer whose earlier transfer is still waiting (the contact is being
# transferred): the customer is already being handed over; the outcome is read back from
# transfer_result.
TRANSFER_IN_PROGRESS = 40129


@dataclass(frozen=True)
class HandoverAnswer:
    """WeCom's immediate answer for one customer of a transfer request."""

    external_userid: str
    # 0: WeCom took the request; else WeCom's errcode for this customer.
    errcode: int


class HandoverStatus(StrEnum):
    """WeCom's state of one customer's transfer (externalcontact/transfer_result)."""

    ACCEPTED = "accepted"
    WAITING = "waiting"
    REFUSED = "refused"
    # The takeover rep has reached their customer limit.
    TAKEOVER_LIMIT = "takeover_limit"
    # WeCom has no record of a transfer of this customer between the two reps.
    NO_RECORD = "no_record"


@dataclass(frozen=True)
class HandoverResult:
    external_userid: str
    status: HandoverStatus
    # When the takeover rep got the customer (None while waiting).
    takeover_time: datetime | None = None


class CustomerTransfers(Protocol):
    async def transfer(
        self,
        tenant_id: str,
        corp_id: str,
        handover_userid: str,
        takeover_userid: str,
        external_userids: Sequence[str],
        *,
        resigned: bool,
        idempotency_key: str,
    ) -> list[HandoverAnswer]:
        """Asks WeCom to hand the customers over (`resigned`: the handover rep has left).

        Not idempotent at WeCom (a repeated request for a customer already waiting is refused
        with an errcode for that customer), so the request carries a key: the same request under
        the same key asks WeCom once and answers the same again. Raises DependencyUnavailable
        when it cannot be asked (retry with the same key).
        """
        ...

    async def transfer_results(
        self,
        tenant_id: str,
        corp_id: str,
        handover_userid: str,
        takeover_userid: str,
        *,
        resigned: bool,
    ) -> list[HandoverResult]:
        """WeCom's state of every customer transferred between the two reps."""
        ...
