"""Use cases of fission campaigns. Callers own the unit of work; nothing here commits."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession
from ulid import ULID

from closedloop.events.v1 import acquisition_events_pb2 as ev
from closedloop_acquisition.catalog.codes import ChannelCode
from closedloop_acquisition.catalog.service import CatalogService
from closedloop_acquisition.catalog.specs import ChannelSpec
from closedloop_acquisition.catalog.views import CampaignView, ChannelView
from closedloop_acquisition.fission import repository as repo
from closedloop_acquisition.fission.views import ParticipantView, Progress
from closedloop_acquisition.models import CampaignRow, ChannelRow, FissionParticipantRow
from loopkit.customer_rows import record_moves, set_aside
from loopkit.errors import FailedPrecondition, InvalidArgument, NotFound
from loopkit.events import Outbox
from loopkit.views import view_of


def _progress(
    row: FissionParticipantRow, campaign: CampaignRow, channel: ChannelRow, created: bool = False
) -> Progress:
    return Progress(
        view_of(ParticipantView, row),
        view_of(CampaignView, campaign),
        view_of(ChannelView, channel),
        created=created,
    )


class FissionService:
    def __init__(self, outbox: Outbox, catalog: CatalogService) -> None:
        self._outbox = outbox
        self._catalog = catalog

    async def _fission_campaign(
        self, session: AsyncSession, tenant_id: str, campaign_id: str
    ) -> CampaignRow:
        campaign = await self._catalog.campaign_row(session, tenant_id, campaign_id)
        if campaign.fission_goal <= 0:
            raise FailedPrecondition("not a fission campaign", field="campaign_id")
        return campaign

    async def check_join(
        self, session: AsyncSession, tenant_id: str, campaign_id: str, app_id: str
    ) -> None:
        await self._fission_campaign(session, tenant_id, campaign_id)
        if not app_id:
            raise InvalidArgument("the official account of the poster's QR code", field="app_id")

    @staticmethod
    def poster(campaign_id: str, app_id: str) -> tuple[str, ChannelSpec]:
        """A new participant's id and the QR channel of their poster. The name and scene carry
        the participation's id, never the customer's: the channel outlives a forget (its touches
        still count), the participation (the only link to the customer) does not."""
        participant_id = str(ULID())
        return participant_id, ChannelSpec(
            campaign_id=campaign_id,
            name=f"fission poster {participant_id}",
            kind="qr_permanent",
            scene=f"fx-{participant_id.lower()}",
            app_id=app_id,
            tags=("fission",),
        )

    async def existing(
        self, session: AsyncSession, tenant_id: str, campaign_id: str, customer_id: str
    ) -> Progress | None:
        campaign = await self._fission_campaign(session, tenant_id, campaign_id)
        row = await repo.participant(session, tenant_id, campaign_id, customer_id)
        if row is None:
            return None
        channel = await self._catalog.channel_row(session, tenant_id, row.channel_id)
        return _progress(row, campaign, channel)

    async def join(
        self,
        session: AsyncSession,
        tenant_id: str,
        campaign_id: str,
        customer_id: str,
        app_id: str,
        *,
        now: datetime,
        poster: tuple[str, ChannelSpec] | None = None,
        code: ChannelCode | None = None,
    ) -> Progress:
        """The participant's code: created on the first join, the same one afterwards.
        `poster` and `code`: the participant id, channel and the QR code WeChat issued for it,
        obtained beforehand (no transaction waits on WeChat)."""
        found = await self.existing(session, tenant_id, campaign_id, customer_id)
        if found is not None:
            return found
        campaign = await self._fission_campaign(session, tenant_id, campaign_id)
        participant_id, spec = poster or self.poster(campaign_id, app_id)
        channel = await self._catalog.add_channel(session, tenant_id, spec, now, code)
        row = FissionParticipantRow(
            id=participant_id,
            tenant_id=tenant_id,
            campaign_id=campaign_id,
            customer_id=customer_id,
            channel_id=channel.id,
            invited=0,
            reached_at=None,
            created_at=now,
        )
        await repo.add(session, row)
        return _progress(row, campaign, channel, created=True)

    async def progress(
        self, session: AsyncSession, tenant_id: str, campaign_id: str, customer_id: str
    ) -> Progress:
        campaign = await self._fission_campaign(session, tenant_id, campaign_id)
        row = await repo.participant(session, tenant_id, campaign_id, customer_id)
        if row is None:
            raise NotFound("this customer has not joined the campaign", field="customer_id")
        channel = await self._catalog.channel_row(session, tenant_id, row.channel_id)
        return _progress(row, campaign, channel)

    async def participant_of(
        self, session: AsyncSession, tenant_id: str, channel_id: str
    ) -> FissionParticipantRow | None:
        return await repo.participant_of_channel(session, tenant_id, channel_id)

    async def invited(
        self,
        session: AsyncSession,
        participant: FissionParticipantRow,
        newcomer_id: str,
        now: datetime,
    ) -> None:
        """A new subscriber came through the participant's code; at the goal, the reward task
        (fission.goal_reached) is published, once."""
        if newcomer_id == participant.customer_id:
            return  # scanning one's own poster brings nobody
        participant.invited += 1
        campaign = await self._catalog.campaign_row(
            session, participant.tenant_id, participant.campaign_id
        )
        if participant.reached_at is None and participant.invited >= campaign.fission_goal:
            participant.reached_at = now
            await self._outbox.emit(
                session,
                "fission.goal_reached",
                tenant_id=participant.tenant_id,
                customer_id=participant.customer_id,
                payload=ev.FissionGoalReached(
                    campaign_id=participant.campaign_id,
                    participant_customer_id=participant.customer_id,
                    invited=participant.invited,
                    goal=campaign.fission_goal,
                    reward=campaign.fission_reward,  # retention grants it and tells them
                ),
            )
        await session.flush()

    async def customer_merged(
        self, session: AsyncSession, tenant_id: str, survivor_id: str, merged_id: str, merge_id: str
    ) -> None:
        """Two participations of one person in one campaign: the older one keeps both counts
        (the other is set aside, the merged one's moved participation logged, for an unmerge)."""
        log = {"tenant_id": tenant_id, "merge_id": merge_id, "from_id": merged_id}
        found = await repo.participants_of_customers(session, tenant_id, [survivor_id, merged_id])
        by_campaign: dict[str, list[FissionParticipantRow]] = {}
        for row in found:
            by_campaign.setdefault(row.campaign_id, []).append(row)
        for rows in by_campaign.values():
            rows.sort(key=lambda r: r.created_at)
            keep = rows[0]
            for other in rows[1:]:
                await set_aside(
                    session, FissionParticipantRow, "customer_id", [other], to_id=survivor_id, **log
                )
                keep.invited += other.invited
                keep.reached_at = keep.reached_at or other.reached_at
                await repo.delete(session, other)
            if keep.customer_id == merged_id:
                keep.customer_id = survivor_id
                await record_moves(
                    session,
                    FissionParticipantRow,
                    "customer_id",
                    [(keep.id,)],
                    to_id=survivor_id,
                    **log,
                )
        await session.flush()

    async def customer_forgotten(
        self, session: AsyncSession, tenant_id: str, customer_ids: Sequence[str]
    ) -> None:
        """A forgotten person takes part in no campaign any more: their participations go, so
        their progress is NOT_FOUND and a scan of their poster credits nobody (a goal reached
        later would name them to retention). The poster's channel stays in the catalog, so its
        touches still count in the stats."""
        await repo.forget(session, tenant_id, customer_ids)

    async def customer_unmerged(
        self, session: AsyncSession, tenant_id: str, ids: list[str], restored: list[dict[str, Any]]
    ) -> None:
        """Participations a merge folded are their own again (`restored`, as the unmerge
        inserted them back): their invitations no longer count on the other side's."""
        rows = await repo.participants_of_customers(session, tenant_id, ids)
        for back in restored:
            for row in rows:
                same_campaign = row.campaign_id == back["campaign_id"]
                if same_campaign and row.id != back["id"]:
                    row.invited = max(row.invited - int(back["invited"]), 0)
        await session.flush()
