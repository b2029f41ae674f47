"""The ReferralService gRPC servicer. Each call is one unit of work around domain calls."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import UTC
from typing import TypeVar

import grpc
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from closedloop.referral.v1 import referral_pb2 as pb
from closedloop.referral.v1 import referral_pb2_grpc
from closedloop_referral.clock import now
from closedloop_referral.programs.service import ProgramService
from closedloop_referral.referrals.service import ReferralService
from closedloop_referral.transport import convert
from loopkit.db import transact
from loopkit.errors import InvalidArgument
from loopkit.tenancy import require_tenant

T = TypeVar("T")
SERVICE_NAME = pb.DESCRIPTOR.services_by_name["ReferralService"].full_name


class ReferralServicer(referral_pb2_grpc.ReferralServiceServicer):
    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        programs: ProgramService,
        referrals: ReferralService,
        after_commit: Callable[[], None],
    ) -> None:
        self._sessions = sessions
        self._programs = programs
        self._referrals = referrals
        self._after_commit = after_commit

    async def _tx(self, work: Callable[[AsyncSession], Awaitable[T]]) -> T:
        return await transact(self._sessions, work, after_commit=self._after_commit)

    async def CreateProgram(
        self, request: pb.CreateProgramRequest, context: grpc.aio.ServicerContext
    ) -> pb.CreateProgramResponse:
        tenant = require_tenant(request.program.tenant_id)
        spec = convert.program_spec(tenant, request.program)
        row = await self._tx(lambda s: self._programs.create(s, spec, now()))
        return pb.CreateProgramResponse(program=convert.program_to_pb(row))

    async def GetProgram(
        self, request: pb.GetProgramRequest, context: grpc.aio.ServicerContext
    ) -> pb.GetProgramResponse:
        tenant = require_tenant(request.tenant_id)
        row = await self._tx(lambda s: self._programs.get(s, tenant, request.program_id))
        return pb.GetProgramResponse(program=convert.program_to_pb(row))

    async def CreateReferralCode(
        self, request: pb.CreateReferralCodeRequest, context: grpc.aio.ServicerContext
    ) -> pb.CreateReferralCodeResponse:
        tenant = require_tenant(request.tenant_id)
        result = await self._tx(
            lambda s: self._programs.create_code(
                s,
                tenant,
                request.customer_id,
                request.program_id,
                device_id=request.device_id,
                at=now(),
            )
        )
        return pb.CreateReferralCodeResponse(
            code=result.code.code, url=result.url, created=result.created
        )

    async def RecordShare(
        self, request: pb.RecordShareRequest, context: grpc.aio.ServicerContext
    ) -> pb.RecordShareResponse:
        tenant = require_tenant(request.tenant_id)
        target = convert.TARGET_NAMES.get(request.target, "")
        at = request.at.ToDatetime(tzinfo=UTC) if request.HasField("at") else now()
        share, url = await self._tx(
            lambda s: self._programs.record_share(
                s,
                tenant,
                request.customer_id,
                code=request.code,
                program_id=request.program_id,
                content_id=request.content_id,
                target=target,
                at=at,
            )
        )
        return pb.RecordShareResponse(share_id=share.id, code=share.code, url=url)

    async def GetReferral(
        self, request: pb.GetReferralRequest, context: grpc.aio.ServicerContext
    ) -> pb.GetReferralResponse:
        tenant = require_tenant(request.tenant_id)
        view = await self._tx(
            lambda s: self._referrals.get(
                s, tenant, request.referral_id, request.newcomer_customer_id
            )
        )
        return pb.GetReferralResponse(
            referral=convert.referral_to_pb(view.referral),
            rewards=[convert.reward_to_pb(r) for r in view.rewards],
            ledger=[convert.ledger_to_pb(e) for e in view.ledger],
        )

    async def ListRewards(
        self, request: pb.ListRewardsRequest, context: grpc.aio.ServicerContext
    ) -> pb.ListRewardsResponse:
        tenant = require_tenant(request.tenant_id)
        if request.status and request.status not in convert.REWARD_STATUS_NAMES:
            raise InvalidArgument("unknown status", field="status")
        if request.limit < 0:
            raise InvalidArgument("must not be negative", field="limit")
        rows = await self._tx(
            lambda s: self._referrals.list_rewards(
                s,
                tenant,
                beneficiary=request.beneficiary_customer_id,
                referral_id=request.referral_id,
                status=convert.REWARD_STATUS_NAMES.get(request.status, ""),
                limit=request.limit,
            )
        )
        return pb.ListRewardsResponse(rewards=[convert.reward_to_pb(r) for r in rows])

    async def GetReferralTree(
        self, request: pb.GetReferralTreeRequest, context: grpc.aio.ServicerContext
    ) -> pb.GetReferralTreeResponse:
        tenant = require_tenant(request.tenant_id)
        nodes = await self._tx(
            lambda s: self._referrals.tree(s, tenant, request.customer_id, request.depth)
        )
        return pb.GetReferralTreeResponse(nodes=[convert.node_to_pb(n) for n in nodes])

    async def GetProgramStats(
        self, request: pb.GetProgramStatsRequest, context: grpc.aio.ServicerContext
    ) -> pb.GetProgramStatsResponse:
        tenant = require_tenant(request.tenant_id)
        if request.top < 0:
            raise InvalidArgument("must not be negative", field="top")

        async def work(session: AsyncSession) -> pb.GetProgramStatsResponse:
            program = await self._programs.get(session, tenant, request.program_id)
            st = await self._referrals.stats(session, program, request.top)
            return pb.GetProgramStatsResponse(
                codes=st.codes,
                shares=st.shares,
                visits=st.visits,
                referrals=st.referrals,
                flagged=st.flagged,
                converted=st.converted,
                rewards_granted=st.rewards_granted,
                viral_coefficient=st.viral_coefficient,
                mean_seconds_to_convert=st.mean_seconds_to_convert,
                top_referrers=[
                    pb.ReferrerCount(customer_id=c, newcomers=n, converted=v)
                    for c, n, v in st.top_referrers
                ],
            )

        return await self._tx(work)

    async def ListReferrals(
        self, request: pb.ListReferralsRequest, context: grpc.aio.ServicerContext
    ) -> pb.ListReferralsResponse:
        tenant = require_tenant(request.tenant_id)
        if request.status and request.status not in convert.REFERRAL_STATUS_NAMES:
            raise InvalidArgument("unknown status", field="status")
        if request.limit < 0:
            raise InvalidArgument("must not be negative", field="limit")
        rows = await self._tx(
            lambda s: self._referrals.list_referrals(
                s,
                tenant,
                status=convert.REFERRAL_STATUS_NAMES.get(request.status, ""),
                referrer=request.referrer_customer_id,
                program_id=request.program_id,
                limit=request.limit,
            )
        )
        return pb.ListReferralsResponse(referrals=[convert.referral_to_pb(r) for r in rows])

    async def ReviewReferral(
        self, request: pb.ReviewReferralRequest, context: grpc.aio.ServicerContext
    ) -> pb.ReviewReferralResponse:
        tenant = require_tenant(request.tenant_id)
        row = await self._tx(
            lambda s: self._referrals.review(
                s,
                tenant,
                request.referral_id,
                approve=request.approve,
                reviewer=request.reviewer[:200],
                note=request.note[:200],
                at=now(),
            )
        )
        return pb.ReviewReferralResponse(referral=convert.referral_to_pb(row))

    async def ReleaseDueRewards(
        self, request: pb.ReleaseDueRewardsRequest, context: grpc.aio.ServicerContext
    ) -> pb.ReleaseDueRewardsResponse:
        tenant = require_tenant(request.tenant_id)
        as_of = request.as_of.ToDatetime(tzinfo=UTC) if request.HasField("as_of") else now()
        granted = await self._tx(lambda s: self._referrals.release_due(s, tenant, as_of))
        return pb.ReleaseDueRewardsResponse(granted=granted)


def register(servicer: ReferralServicer) -> Callable[[grpc.aio.Server], None]:
    def add(server: grpc.aio.Server) -> None:
        referral_pb2_grpc.add_ReferralServiceServicer_to_server(servicer, server)  # type: ignore[no-untyped-call]

    return add
