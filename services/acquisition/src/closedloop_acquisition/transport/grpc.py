"""The AcquisitionService gRPC servicer: translate, run the use case, translate back."""

from __future__ import annotations

from collections.abc import Callable

import grpc

from closedloop.acquisition.v1 import acquisition_pb2 as pb
from closedloop.acquisition.v1 import acquisition_pb2_grpc
from closedloop_acquisition.clock import now
from closedloop_acquisition.leads.service import LeadInput
from closedloop_acquisition.transport import convert
from closedloop_acquisition.transport.flows import Flows
from loopkit.tenancy import require_tenant

SERVICE_NAME = pb.DESCRIPTOR.services_by_name["AcquisitionService"].full_name


class AcquisitionServicer(acquisition_pb2_grpc.AcquisitionServiceServicer):
    def __init__(self, flows: Flows) -> None:
        self._f = flows

    async def CreateCampaign(
        self, request: pb.CreateCampaignRequest, context: grpc.aio.ServicerContext
    ) -> pb.CreateCampaignResponse:
        tenant = require_tenant(request.tenant_id)
        spec = convert.campaign_spec(request)
        row = await self._f.tx(lambda s: self._f.catalog.create_campaign(s, tenant, spec, now()))
        return pb.CreateCampaignResponse(campaign=convert.campaign_to_pb(row))

    async def GetCampaign(
        self, request: pb.GetCampaignRequest, context: grpc.aio.ServicerContext
    ) -> pb.GetCampaignResponse:
        tenant = require_tenant(request.tenant_id)
        row = await self._f.read(
            lambda s: self._f.catalog.get_campaign(s, tenant, request.campaign_id)
        )
        return pb.GetCampaignResponse(campaign=convert.campaign_to_pb(row))

    async def ListCampaigns(
        self, request: pb.ListCampaignsRequest, context: grpc.aio.ServicerContext
    ) -> pb.ListCampaignsResponse:
        tenant = require_tenant(request.tenant_id)
        rows, token = await self._f.read(
            lambda s: self._f.catalog.list_campaigns(
                s, tenant, page_token=request.page.page_token, page_size=request.page.page_size
            )
        )
        return pb.ListCampaignsResponse(
            campaigns=[convert.campaign_to_pb(r) for r in rows],
            page={"next_page_token": token},
        )

    async def CreateChannel(
        self, request: pb.CreateChannelRequest, context: grpc.aio.ServicerContext
    ) -> pb.CreateChannelResponse:
        tenant = require_tenant(request.tenant_id)
        spec = convert.channel_spec(request.channel)
        row = await self._f.create_channel(tenant, spec)
        return pb.CreateChannelResponse(channel=convert.channel_to_pb(row))

    async def DeleteChannel(
        self, request: pb.DeleteChannelRequest, context: grpc.aio.ServicerContext
    ) -> pb.DeleteChannelResponse:
        tenant = require_tenant(request.tenant_id)
        row = await self._f.delete_channel(tenant, request.channel_id)
        return pb.DeleteChannelResponse(channel=convert.channel_to_pb(row))

    async def GetChannel(
        self, request: pb.GetChannelRequest, context: grpc.aio.ServicerContext
    ) -> pb.GetChannelResponse:
        tenant = require_tenant(request.tenant_id)
        row = await self._f.read(
            lambda s: self._f.catalog.get_channel(s, tenant, request.channel_id)
        )
        return pb.GetChannelResponse(channel=convert.channel_to_pb(row))

    async def ListChannels(
        self, request: pb.ListChannelsRequest, context: grpc.aio.ServicerContext
    ) -> pb.ListChannelsResponse:
        tenant = require_tenant(request.tenant_id)
        rows, token = await self._f.read(
            lambda s: self._f.catalog.list_channels(
                s,
                tenant,
                campaign_id=request.campaign_id,
                page_token=request.page.page_token,
                page_size=request.page.page_size,
            )
        )
        return pb.ListChannelsResponse(
            channels=[convert.channel_to_pb(r) for r in rows], page={"next_page_token": token}
        )

    async def CreateLandingPage(
        self, request: pb.CreateLandingPageRequest, context: grpc.aio.ServicerContext
    ) -> pb.CreateLandingPageResponse:
        tenant = require_tenant(request.tenant_id)
        spec = convert.page_spec(request)
        row = await self._f.tx(
            lambda s: self._f.catalog.create_landing_page(s, tenant, spec, now())
        )
        return pb.CreateLandingPageResponse(page=convert.page_to_pb(row))

    async def GetLandingPage(
        self, request: pb.GetLandingPageRequest, context: grpc.aio.ServicerContext
    ) -> pb.GetLandingPageResponse:
        tenant = require_tenant(request.tenant_id)
        row = await self._f.read(
            lambda s: self._f.catalog.get_landing_page(s, tenant, request.page_id)
        )
        return pb.GetLandingPageResponse(page=convert.page_to_pb(row))

    async def RecordTouch(
        self, request: pb.RecordTouchRequest, context: grpc.aio.ServicerContext
    ) -> pb.RecordTouchResponse:
        tenant = require_tenant(request.tenant_id)
        touch = await self._f.record_touch(tenant, convert.touch_input(request))
        return pb.RecordTouchResponse(touch=convert.touch_to_pb(touch))

    async def CaptureLead(
        self, request: pb.CaptureLeadRequest, context: grpc.aio.ServicerContext
    ) -> pb.CaptureLeadResponse:
        tenant = require_tenant(request.tenant_id)
        lead = LeadInput(
            page_id=request.page_id,
            values=dict(request.values),
            identities=convert.identities(request.identities),
            channel_id=request.channel_id,
            referral_code=request.referral_code,
            parameters=dict(request.parameters),
            region=request.region,
            request_id=request.request_id,
        )
        captured = await self._f.capture_lead(tenant, lead)
        return pb.CaptureLeadResponse(
            lead=convert.lead_to_pb(captured.lead), repeat=captured.repeat
        )

    async def GetLead(
        self, request: pb.GetLeadRequest, context: grpc.aio.ServicerContext
    ) -> pb.GetLeadResponse:
        tenant = require_tenant(request.tenant_id)
        row = await self._f.read(lambda s: self._f.leads.get_lead(s, tenant, request.lead_id))
        return pb.GetLeadResponse(lead=convert.lead_to_pb(row))

    async def GetChannelStats(
        self, request: pb.GetChannelStatsRequest, context: grpc.aio.ServicerContext
    ) -> pb.GetChannelStatsResponse:
        tenant = require_tenant(request.tenant_id)
        stats = await self._f.read(
            lambda s: self._f.stats.stats(
                s,
                tenant,
                channel_id=request.channel_id,
                campaign_id=request.campaign_id,
                since=convert.from_ts(getattr(request, "from"), request.HasField("from")),
                until=convert.from_ts(request.to, request.HasField("to")),
                by_day=request.by_day,
            )
        )
        return pb.GetChannelStatsResponse(
            stats=convert.stats_to_pb(stats), days=convert.days_to_pb(stats)
        )

    async def JoinFission(
        self, request: pb.JoinFissionRequest, context: grpc.aio.ServicerContext
    ) -> pb.JoinFissionResponse:
        tenant = require_tenant(request.tenant_id)
        progress = await self._f.join_fission(
            tenant, request.campaign_id, convert.identities(request.identities), request.app_id
        )
        return pb.JoinFissionResponse(
            participant=convert.participant_to_pb(progress), created=progress.created
        )

    async def GetFissionProgress(
        self, request: pb.GetFissionProgressRequest, context: grpc.aio.ServicerContext
    ) -> pb.GetFissionProgressResponse:
        tenant = require_tenant(request.tenant_id)
        progress = await self._f.read(
            lambda s: self._f.fission.progress(s, tenant, request.campaign_id, request.customer_id)
        )
        return pb.GetFissionProgressResponse(participant=convert.participant_to_pb(progress))


def register(servicer: AcquisitionServicer) -> Callable[[grpc.aio.Server], None]:
    def add(server: grpc.aio.Server) -> None:
        acquisition_pb2_grpc.add_AcquisitionServiceServicer_to_server(servicer, server)  # type: ignore[no-untyped-call]

    return add
