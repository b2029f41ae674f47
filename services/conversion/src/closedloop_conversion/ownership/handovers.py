"""Transfers as WeCom carries them out: which customers WeCom is to be asked about, and what its
answers mean for our transfers.

WeCom decides when a customer has a new rep. Asking it (transfer_customer, or the resigned
variant for a departed rep) only starts a transfer: the customer may refuse, the takeover rep may
be full, otherwise WeCom hands the customer over after 24 h. The sweeper (transport.workers) asks
WeCom about each new pending transfer through the gateway and reads back transfer_result; this
module holds no I/O: it picks the rows and applies the answers.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession

from closedloop_conversion.models import TransferRow
from closedloop_conversion.ownership.repository import OwnershipRepository
from closedloop_conversion.ownership.transfers import TransferService
from closedloop_conversion.ownership.views import TransferView
from loopkit.views import view_of
from loopkit.wechat.wecom import (
    TRANSFER_IN_PROGRESS,
    HandoverAnswer,
    HandoverResult,
    HandoverStatus,
)

BATCH = 500
# WeCom's transfer_customer takes at most 100 customers per call.
WECOM_MAX_CUSTOMERS = 100


@dataclass(frozen=True)
class Handover:
    """Pending transfers between one pair of reps of one corp, in one mode: one WeCom call."""

    tenant_id: str
    corp_id: str
    handover_userid: str
    takeover_userid: str
    resigned: bool
    # external_userid -> our transfer id
    transfers: Mapping[str, str]

    @property
    def idempotency_key(self) -> str:
        """The same transfers asked again (after an outage) are the same request to the gateway,
        which then does not ask WeCom twice."""
        ids = ",".join(sorted(self.transfers.values()))
        return "handover-" + hashlib.sha256(ids.encode()).hexdigest()[:40]


class Handovers:
    def __init__(self, transfers: TransferService) -> None:
        self._transfers = transfers
        self._repo = OwnershipRepository()

    async def claim_new(self, session: AsyncSession, at: datetime) -> list[Handover]:
        """Pending transfers WeCom has not been asked about, marked asked (so one replica asks)."""
        found = await self._repo.pending_wecom_transfers(session, requested=False, limit=BATCH)
        for row, *_ in found:
            row.wecom_requested_at = at
        return _grouped(found)

    async def waiting(self, session: AsyncSession) -> list[Handover]:
        """Pending transfers WeCom has been asked about: their result is to be read back."""
        return _grouped(
            await self._repo.pending_wecom_transfers(session, requested=True, limit=BATCH)
        )

    async def release(self, session: AsyncSession, handover: Handover) -> None:
        """WeCom could not be asked (the gateway is unreachable): ask again next round."""
        for _, row in await self._pending(session, handover, handover.transfers):
            row.wecom_requested_at = None

    async def refuse_all(
        self, session: AsyncSession, handover: Handover, reason: str, at: datetime
    ) -> None:
        """The gateway refused the request itself (say, the corp is not the tenant's)."""
        for _, row in await self._pending(session, handover, handover.transfers):
            _end(row, "failed", reason, at)

    async def record_answers(
        self,
        session: AsyncSession,
        handover: Handover,
        answers: Sequence[HandoverAnswer],
        at: datetime,
    ) -> int:
        """WeCom's immediate answer per customer: an errcode ends that transfer as failed (the
        customer stays with the former rep), except 40129 (the customer is already in
        transfer: in progress, its result read back like an accepted one). Returns how many
        failed."""
        refused = {
            a.external_userid: a.errcode
            for a in answers
            if a.errcode not in (0, TRANSFER_IN_PROGRESS)
        }
        rows = await self._pending(session, handover, refused)
        for external_userid, row in rows:
            code = refused[external_userid]
            _end(row, "failed", f"WeCom refused the request (errcode {code})", at)
        return len(rows)

    async def record_results(
        self,
        session: AsyncSession,
        handover: Handover,
        results: Sequence[HandoverResult],
        at: datetime,
    ) -> list[TransferView]:
        """WeCom's state per customer (transfer_result); returns the transfers it ended."""
        by_user = {r.external_userid: r for r in results if r.external_userid in handover.transfers}
        ended: list[TransferView] = []
        for external_userid, row in await self._pending(session, handover, by_user):
            result = by_user[external_userid]
            if result.status is HandoverStatus.ACCEPTED:
                await self._transfers.complete(session, row, result.takeover_time or at)
            elif result.status is HandoverStatus.REFUSED:
                _end(row, "refused", "WeCom: the customer refused", at)
            elif result.status is HandoverStatus.TAKEOVER_LIMIT:
                _end(row, "over_limit", "WeCom: the takeover rep has reached their limit", at)
            elif result.status is HandoverStatus.NO_RECORD:
                # Asked, yet WeCom knows nothing of it (say, we stopped between marking it asked
                # and asking): ask again.
                row.wecom_requested_at = None
                continue
            else:
                continue  # waiting: WeCom hands the customer over within 24 h
            ended.append(view_of(TransferView, row))
        return ended

    async def _pending(
        self, session: AsyncSession, handover: Handover, external_userids: Mapping[str, object]
    ) -> list[tuple[str, TransferRow]]:
        """The handover's transfers of these customers that are still pending, locked."""
        rows = []
        for external_userid in external_userids:
            transfer_id = handover.transfers.get(external_userid)
            if transfer_id is None:
                continue
            row = await self._repo.transfer(session, handover.tenant_id, transfer_id)
            if row is not None and row.status == "pending":
                rows.append((external_userid, row))
        return rows


def _end(row: TransferRow, status: str, reason: str, at: datetime) -> None:
    row.status = status
    row.reason = reason[:500]
    row.completed_at = at


def _grouped(found: Sequence[Sequence[object]]) -> list[Handover]:
    groups: dict[tuple[str, str, str, str, bool], dict[str, str]] = {}
    for row, corp_id, external_userid, from_user, to_user in found:
        assert isinstance(row, TransferRow)
        key = (row.tenant_id, str(corp_id), str(from_user), str(to_user), row.mode == "resigned")
        groups.setdefault(key, {})[str(external_userid)] = row.id
    handovers = []
    for (tenant, corp, from_user, to_user, resigned), transfers in groups.items():
        items = list(transfers.items())
        for start in range(0, len(items), WECOM_MAX_CUSTOMERS):
            chunk = dict(items[start : start + WECOM_MAX_CUSTOMERS])
            handovers.append(Handover(tenant, corp, from_user, to_user, resigned, chunk))
    return handovers
