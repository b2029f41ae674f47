"""Consumers: acquisition's touches and interactions, which open the 48-hour window, and identity's
customer.merged / .unmerged / .forgotten."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession

from closedloop.common.v1 import common_pb2
from closedloop.events.v1 import acquisition_events_pb2 as acq
from closedloop.events.v1.envelope_pb2 import Envelope
from closedloop_gateway import customers
from closedloop_gateway.interactions import service as interactions
from loopkit.consumer import Subscription
from loopkit.customer_events import identity_subscription
from loopkit.errors import InvalidArgument
from loopkit.events import unpack
from loopkit.timestamps import now

# Touches that open the window (WeChat: subscribing and scanning a code do, an ad click not).
_WINDOW_TOUCHES = (acq.TOUCH_KIND_SCAN, acq.TOUCH_KIND_SUBSCRIBE)
# Interactions that do not: opening a menu link ("view").
_NO_WINDOW_INTERACTIONS = {"view"}


def _at(env: Envelope) -> datetime:
    return env.occurred_at.ToDatetime(tzinfo=now().tzinfo) if env.HasField("occurred_at") else now()


async def touch_recorded(session: AsyncSession, env: Envelope) -> None:
    try:
        touch = unpack(env, acq.TouchRecorded)
    except ValueError as exc:
        raise InvalidArgument(str(exc), field="payload") from None
    if touch.kind not in _WINDOW_TOUCHES or touch.expired:
        return
    at = _at(env)
    for identity in touch.identities:
        if identity.kind == common_pb2.IDENTITY_KIND_WECHAT_OPENID and identity.scope:
            await interactions.record(
                session,
                env.tenant_id,
                identity.scope,
                interactions.openid_subject(identity.value),
                at,
                customer_id=env.customer_id,
            )
            if env.customer_id:
                await interactions.record(
                    session,
                    env.tenant_id,
                    identity.scope,
                    interactions.customer_subject(env.customer_id),
                    at,
                    customer_id=env.customer_id,
                )


async def interaction_recorded(session: AsyncSession, env: Envelope) -> None:
    try:
        interaction = unpack(env, acq.InteractionRecorded)
    except ValueError as exc:
        raise InvalidArgument(str(exc), field="payload") from None
    if interaction.kind in _NO_WINDOW_INTERACTIONS or not interaction.app_id or not env.customer_id:
        return
    await interactions.record(
        session,
        env.tenant_id,
        interaction.app_id,
        interactions.customer_subject(env.customer_id),
        _at(env),
        customer_id=env.customer_id,
    )


def subscriptions() -> list[Subscription]:
    return [
        identity_subscription(
            on_merged=customers.merged,
            on_unmerged=customers.unmerged,
            on_forgotten=customers.forgotten,
        ),
        Subscription.to(
            "acquisition",
            "interactions",
            {"touch.recorded": touch_recorded, "interaction.recorded": interaction_recorded},
        ),
    ]
