"""The ReferralService gRPC servicer. Each call is one unit of work around domain calls (the
Get and List calls a reading one, `UnitOfWork.read`: on SQLite they never wait for a writer)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC

import grpc

from closedloop.referral.v1 import referral_pb2 as pb
from closedloop.referral.v1 import referral_pb2_grpc
from closedloop_referral.clock import now
from closedloop_referral.programs.service import ProgramService
from closedloop_referral.referrals.service import ReferralService
from closedloop_referral.rewards.service import RewardService
from closedloop_referral.stats.service import StatsService
from closedloop_referral.transport import convert
from loopkit.errors import InvalidArgument
from loopkit.tenancy import require_tenant
from loopkit.uow import UnitOfWork

SERVICE_NAME = pb.DESCRIPTOR.services_by_name["ReferralService"].full_name


class ReferralServicer(referral_pb2_grpc.ReferralServiceServicer):
    def __init__(
        self,
        uow: UnitOfWork,
        *,
        programs: ProgramService,
        referrals: ReferralService,
        rewards: RewardService,
        stats: StatsService,
    ) -> None:
        self._uow = uow
        self._programs = programs
        self._referrals = referrals
        self._rewards = rewards
        self._stats = stats

    async def CreateProgram(
        self, request: pb.CreateProgramRequest, context: grpc.aio.ServicerContext
    ) -> pb.CreateProgramResponse:
        tenant = require_tenant(request.program.tenant_id)
        spec = convert.program_spec(tenant, request.program)
        row = await self._uow.run(lambda s: self._programs.create(s, spec, now()))
        return pb.CreateProgramResponse(program=convert.program_to_pb(row))

    async def GetProgram(
        self, request: pb.GetProgramRequest, context: grpc.aio.ServicerContext
    ) -> pb.GetProgramResponse:
        tenant = require_tenant(request.tenant_id)
        row = await self._uow.read(lambda s: self._programs.get(s, tenant, request.program_id))
        return pb.GetProgramResponse(program=convert.program_to_pb(row))

    async def CreateReferralCode(
        self, request: pb.CreateReferralCodeRequest, context: grpc.aio.ServicerContext
    ) -> pb.CreateReferralCodeResponse:
        tenant = require_tenant(request.tenant_id)
        result = await self._uow.run(
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
            code=result.code, url=result.url, created=result.created
        )

    async def RecordShare(
        self, request: pb.RecordShareRequest, context: grpc.aio.ServicerContext
    ) -> pb.RecordShareResponse:
        tenant = require_tenant(request.tenant_id)
        target = convert.TARGET_NAMES.get(request.target, "")
        at = request.at.ToDatetime(tzinfo=UTC) if request.HasField("at") else now()
        link = await self._uow.run(
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
        return pb.RecordShareResponse(share_id=link.share_id, code=link.code, url=link.url)

    async def GetReferral(
        self, request: pb.GetReferralRequest, context: grpc.aio.ServicerContext
    ) -> pb.GetReferralResponse:
        tenant = require_tenant(request.tenant_id)
        view = await self._uow.read(
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
        rows = await self._uow.read(
            lambda s: self._rewards.listed(
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
        nodes = await self._uow.read(
            lambda s: self._stats.tree(s, tenant, request.customer_id, request.depth)
        )
        return pb.GetReferralTreeResponse(nodes=[convert.node_to_pb(n) for n in nodes])

    async def GetProgramStats(
        self, request: pb.GetProgramStatsRequest, context: grpc.aio.ServicerContext
    ) -> pb.GetProgramStatsResponse:
        tenant = require_tenant(request.tenant_id)
        if request.top < 0:
            raise InvalidArgument("must not be negative", field="top")

        st = await self._uow.read(
            lambda s: self._stats.stats(s, tenant, request.program_id, request.top)
        )
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

    async def ListReferrals(
        self, request: pb.ListReferralsRequest, context: grpc.aio.ServicerContext
    ) -> pb.ListReferralsResponse:
        tenant = require_tenant(request.tenant_id)
        if request.status and request.status not in convert.REFERRAL_STATUS_NAMES:
            raise InvalidArgument("unknown status", field="status")
        if request.limit < 0:
            raise InvalidArgument("must not be negative", field="limit")
        rows = await self._uow.read(
            lambda s: self._referrals.listed(
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
        row = await self._uow.run(
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
        granted = await self._uow.run(lambda s: self._rewards.release_due(s, tenant, as_of))
        return pb.ReleaseDueRewardsResponse(granted=granted)


def register(servicer: ReferralServicer) -> Callable[[grpc.aio.Server], None]:
    def add(server: grpc.aio.Server) -> None:
        referral_pb2_grpc.add_ReferralServiceServicer_to_server(servicer, server)  # type: ignore[no-untyped-call]

    return add
