"""Customer transfers asked of WeCom at most once per idempotency key.

WeCom's transfer_customer is not idempotent: asked again for a customer already in transfer, it
refuses that customer with an errcode, so a caller retrying after a timeout would record a
transfer that is in fact under way as refused. Each request is therefore stored under
(tenant, idempotency_key) before WeCom is asked and its answer kept with it:

* the same key again gets the stored answer without a WeCom call (another request under the
  same key is ALREADY_EXISTS);
* while one replica is asking, a retry answers UNAVAILABLE (retry shortly);
* a request whose asking stopped without an answer (the replica died, WeCom did not answer, the
  commit failed) is in doubt: the next retry reads WeCom's transfer_result for the two reps, and
  customers WeCom has a record of count as accepted; only the others are asked.

The keys are kept `KEY_TTL` (WeCom settles a transfer within a day), then deleted.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from closedloop_gateway.models import TransferRequestRow
from closedloop_gateway.operations.service import CustomerTransfer, GatewayOperations
from loopkit.db import transact
from loopkit.errors import AlreadyExists, DependencyUnavailable, InvalidArgument
from loopkit.timestamps import now
from loopkit.wechat.wecom import TRANSFER_IN_PROGRESS

KEY_TTL = timedelta(days=7)
CALLING, DONE = "calling", "done"
# WeCom's transfer_result status for "no transfer of this customer between the two reps".
NO_RECORD = 5


@dataclass(frozen=True)
class TransferRequest:
    tenant_id: str
    idempotency_key: str
    corp_id: str
    handover_userid: str
    takeover_userid: str
    external_userids: tuple[str, ...]
    resigned: bool
    success_msg: str = ""

    def fingerprint(self) -> str:
        what = [
            self.corp_id,
            self.handover_userid,
            self.takeover_userid,
            list(self.external_userids),
            self.resigned,
            self.success_msg,
        ]
        return hashlib.sha256(json.dumps(what).encode()).hexdigest()


@dataclass(frozen=True)
class _Claim:
    stored: dict[str, int] | None = None  # the answer of an earlier request under the key
    in_doubt: bool = False


class IdempotentTransfers:
    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        operations: GatewayOperations,
        *,
        lease_s: float,
    ) -> None:
        self._sessions = sessions
        self._ops = operations
        self._lease = timedelta(seconds=lease_s)

    async def transfer(self, request: TransferRequest) -> list[CustomerTransfer]:
        if not 0 < len(request.idempotency_key) <= 200:
            raise InvalidArgument("1 to 200 characters are required", field="idempotency_key")
        users = list(request.external_userids)
        self._ops.check_transfer(
            request.tenant_id,
            request.corp_id,
            request.handover_userid,
            request.takeover_userid,
            users,
        )
        claim = await transact(self._sessions, lambda s: self._claim(s, request, now()))
        if claim.stored is not None:
            return [CustomerTransfer(u, claim.stored.get(u, 0)) for u in users]
        try:
            answer = await self._ask(request, in_doubt=claim.in_doubt)
        except BaseException:
            # WeCom may have taken part of it: the next retry reconciles instead of re-asking.
            await transact(self._sessions, lambda s: self._set_in_doubt(s, request))
            raise
        await transact(self._sessions, lambda s: self._done(s, request, answer))
        return [CustomerTransfer(u, answer.get(u, 0)) for u in users]

    async def _ask(self, request: TransferRequest, *, in_doubt: bool) -> dict[str, int]:
        answer: dict[str, int] = {}
        to_ask = list(request.external_userids)
        if in_doubt:
            known = await self._ops.transfer_result(
                request.tenant_id,
                request.corp_id,
                request.handover_userid,
                request.takeover_userid,
                resigned=request.resigned,
            )
            recorded = {r.external_userid for r in known if r.status != NO_RECORD}
            answer = {u: 0 for u in to_ask if u in recorded}
            to_ask = [u for u in to_ask if u not in recorded]
        if to_ask:
            outcomes = await self._ops.transfer_customers(
                request.tenant_id,
                request.corp_id,
                request.handover_userid,
                request.takeover_userid,
                to_ask,
                resigned=request.resigned,
                success_msg=request.success_msg,
            )
            # A customer still waiting on an earlier transfer is refused with 40129: the
            # customer is already being handed over (say, the caller's first request was lost
            # before it was stored here), so it counts as accepted and is read back as always.
            answer |= {
                o.external_userid: 0 if o.errcode == TRANSFER_IN_PROGRESS else o.errcode
                for o in outcomes
            }
        return answer

    async def _claim(self, session: AsyncSession, request: TransferRequest, at: datetime) -> _Claim:
        await session.execute(
            delete(TransferRequestRow).where(TransferRequestRow.created_at < at - KEY_TTL)
        )
        row = await session.scalar(
            select(TransferRequestRow)
            .where(
                TransferRequestRow.tenant_id == request.tenant_id,
                TransferRequestRow.idempotency_key == request.idempotency_key,
            )
            .with_for_update()
        )
        if row is None:
            session.add(
                TransferRequestRow(
                    tenant_id=request.tenant_id,
                    idempotency_key=request.idempotency_key,
                    fingerprint=request.fingerprint(),
                    status=CALLING,
                    answer={},
                    lease_until=at + self._lease,
                    created_at=at,
                )
            )
            # A concurrent first request fails here; transact's retry then finds its row.
            await session.flush()
            return _Claim()
        if row.fingerprint != request.fingerprint():
            raise AlreadyExists(
                "this idempotency key was used for another transfer", field="idempotency_key"
            )
        if row.status == DONE:
            return _Claim(stored=dict(row.answer))
        lease_until = row.lease_until
        if lease_until is not None and lease_until.replace(tzinfo=at.tzinfo) > at:
            raise DependencyUnavailable("this transfer is being asked of WeCom: retry shortly")
        row.lease_until = at + self._lease
        return _Claim(in_doubt=True)

    async def _set_in_doubt(self, session: AsyncSession, request: TransferRequest) -> None:
        row = await self._row(session, request)
        if row is not None and row.status == CALLING:
            row.lease_until = None

    async def _done(
        self, session: AsyncSession, request: TransferRequest, answer: dict[str, int]
    ) -> None:
        row = await self._row(session, request)
        if row is not None:
            row.status, row.answer, row.lease_until = DONE, answer, None

    @staticmethod
    async def _row(session: AsyncSession, request: TransferRequest) -> TransferRequestRow | None:
        return await session.get(TransferRequestRow, (request.tenant_id, request.idempotency_key))
