"""The gateway's outcomes (message.sent / message.failed) on the broadcast recipients and
win-back offers whose messages they were, found by the send's idempotency key (the keys the
dispatchers give: broadcast:<broadcast id>:<customer>, winback:<offer id>). Other senders' keys
(conversion's welcome messages) are not ours and are ignored. Applying an outcome twice writes
the same values, and the kit's inbox makes a redelivery a no-op besides."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from closedloop.events.v1 import gateway_events_pb2 as gw
from closedloop.events.v1.envelope_pb2 import Envelope
from closedloop_retention.broadcasts.service import BroadcastService
from closedloop_retention.winback.service import WinBackService
from loopkit.consumer import Handler, Subscription
from loopkit.envelopes import payload


def broadcast_key(broadcast_id: str, customer_id: str) -> str:
    return f"broadcast:{broadcast_id}:{customer_id}"


def win_back_key(offer_id: str) -> str:
    return f"winback:{offer_id}"


class Outcomes:
    def __init__(self, broadcasts: BroadcastService, offers: WinBackService) -> None:
        self._broadcasts = broadcasts
        self._offers = offers

    def subscription(self) -> Subscription:
        handlers: dict[str, Handler] = {"message.sent": self.sent, "message.failed": self.failed}
        return Subscription.to("gateway", "gateway-outcomes", handlers)

    async def sent(self, session: AsyncSession, env: Envelope) -> None:
        event = payload(env, gw.MessageSent)
        await self._apply(session, env.tenant_id, event.idempotency_key, event.send_id, True, 0)

    async def failed(self, session: AsyncSession, env: Envelope) -> None:
        event = payload(env, gw.MessageFailed)
        await self._apply(
            session, env.tenant_id, event.idempotency_key, event.send_id, False, event.errcode
        )

    async def _apply(  # noqa: PLR0917 - the outcome's fields, in their order
        self, session: AsyncSession, tenant: str, key: str, send_id: str, ok: bool, errcode: int
    ) -> None:
        kind, _, rest = key.partition(":")
        if kind == "winback" and rest:
            await self._offers.delivered(session, tenant, rest, ok=ok, errcode=errcode)
        elif kind == "broadcast" and ":" in rest:
            broadcast_id, _, customer_id = rest.partition(":")
            await self._broadcasts.delivered(
                session,
                tenant,
                broadcast_id,
                customer_id,
                message_id=send_id,
                ok=ok,
                errcode=errcode,
            )
