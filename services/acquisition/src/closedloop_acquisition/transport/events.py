"""Consumers: identity's customer events, and the referral service's share visits."""

from __future__ import annotations

from datetime import UTC

from sqlalchemy.ext.asyncio import AsyncSession

from closedloop.events.v1 import conversion_events_pb2 as cpb
from closedloop.events.v1 import referral_events_pb2 as rpb
from closedloop.events.v1.envelope_pb2 import Envelope
from closedloop_acquisition import metrics
from closedloop_acquisition.capture.service import CaptureService
from closedloop_acquisition.catalog.service import CatalogService
from closedloop_acquisition.fission.service import FissionService
from closedloop_acquisition.transport.convert import identities as identities_from_pb
from loopkit.consumer import Subscription
from loopkit.customer_events import identity_subscription
from loopkit.errors import InvalidArgument
from loopkit.events import unpack


def identity_events(capture: CaptureService, fission: FissionService) -> Subscription:
    async def merged(
        session: AsyncSession, tenant_id: str, survivor_id: str, merged_id: str
    ) -> None:
        await fission.customer_merged(session, tenant_id, survivor_id, merged_id)
        await capture.customer_merged(session, tenant_id, survivor_id, merged_id)

    return identity_subscription(on_merged=merged, on_forgotten=capture.customer_forgotten)


def referral_events(catalog: CatalogService, capture: CaptureService) -> Subscription:
    async def share_visited(session: AsyncSession, env: Envelope) -> None:
        """A share link opened: a VISIT touch on the program's referral channel, carrying the
        referrer, so the visitor's later lead is credited to them."""
        try:
            event = unpack(env, rpb.ShareVisited)
        except ValueError as exc:
            raise InvalidArgument(str(exc), field="payload") from None
        channel = await catalog.get_channel(session, env.tenant_id, event.channel_id)
        if channel.kind != "referral":
            raise InvalidArgument(
                f"channel {channel.id} is not a referral channel", field="channel_id"
            )
        visitor = identities_from_pb(event.visitor_identities, "visitor_identities")
        customer_id = env.customer_id
        if not customer_id and visitor:
            # Inside the consumer's transaction: an unreachable identity is retried.
            resolved = await capture.resolve(env.tenant_id, visitor)
            customer_id = resolved.customer_id if resolved else ""
        parameters = {"program_id": event.program_id, "share_id": event.share_id}
        await capture.add_touch(
            session,
            env.tenant_id,
            channel,
            "visit",
            identities=visitor,
            customer_id=customer_id,
            referral_code=event.code,
            referrer_customer_id=event.referrer_customer_id,
            parameters={k: v for k, v in parameters.items() if v},
            occurred_at=env.occurred_at.ToDatetime(tzinfo=UTC)
            if env.HasField("occurred_at")
            else None,
        )
        metrics.touch("visit", "referral")
        await capture.credit_late_visit(
            session, env.tenant_id, customer_id, event.code, event.referrer_customer_id
        )

    return Subscription.to("referral", "share-visits", {"share_visited": share_visited})


def conversion_events(catalog: CatalogService, capture: CaptureService) -> Subscription:
    async def ownership_started(session: AsyncSession, env: Envelope) -> None:
        """A WeCom friend-add: a FRIEND_ADD touch on the contact-me code's channel (named by
        conversion, else found by the code's state), or on none for a friend added otherwise."""
        try:
            event = unpack(env, cpb.OwnershipStarted)
        except ValueError as exc:
            raise InvalidArgument(str(exc), field="payload") from None
        channel = None
        if event.channel_id:
            channel = await catalog.get_channel(session, env.tenant_id, event.channel_id)
        elif event.state:
            channel = await catalog.channel_by_state(session, env.tenant_id, event.state)
        contact = identities_from_pb([event.external_contact], "external_contact")
        touch = await capture.add_touch(
            session,
            env.tenant_id,
            channel,
            "friend_add",
            identities=contact,
            customer_id=env.customer_id,
            parameters={"rep_id": event.rep_id} if event.rep_id else {},
            occurred_at=env.occurred_at.ToDatetime(tzinfo=UTC)
            if env.HasField("occurred_at")
            else None,
        )
        metrics.touch(touch.kind, touch.channel_kind)

    return Subscription.to("conversion", "friend-adds", {"ownership.started": ownership_started})
