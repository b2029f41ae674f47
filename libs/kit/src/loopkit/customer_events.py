"""Following the identity service's customer events, the same way in every stage service.

Each service keeps the customer ids it saw. When identity merges two customers, rows of the
merged id move to the survivor (`loopkit.customer_rows`, logged under the merge's id); when it
undoes a merge, the rows that came with the merged customer go back to it; when it forgets one,
the service erases what it holds on them.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence

from sqlalchemy.ext.asyncio import AsyncSession

from closedloop.events.v1 import identity_events_pb2 as pb
from closedloop.events.v1.envelope_pb2 import Envelope
from loopkit.consumer import Handler, Subscription
from loopkit.envelopes import payload
from loopkit.errors import InvalidArgument

# (session, tenant_id, survivor_id, merged_id, merge_id: "" from a producer that sent none)
MergedHandler = Callable[[AsyncSession, str, str, str, str], Awaitable[None]]
# (session, tenant_id, restored_id, survivor_id: who holds its rows now, merge_id)
UnmergedHandler = Callable[[AsyncSession, str, str, str, str], Awaitable[None]]
# (session, tenant_id, every id the person had: the live one and those merged into it)
ForgottenHandler = Callable[[AsyncSession, str, Sequence[str]], Awaitable[None]]


def identity_subscription(
    *,
    on_merged: MergedHandler,
    on_unmerged: UnmergedHandler,
    on_forgotten: ForgottenHandler,
    name: str = "identity",
) -> Subscription:
    """A durable consumer of customer.merged, .unmerged and .forgotten calling the handlers."""

    async def merged(session: AsyncSession, env: Envelope) -> None:
        event = payload(env, pb.CustomerMerged)
        await on_merged(session, env.tenant_id, event.survivor_id, event.merged_id, event.merge_id)

    async def unmerged(session: AsyncSession, env: Envelope) -> None:
        event = payload(env, pb.CustomerUnmerged)
        if not event.restored_id or not event.merge_id:
            raise InvalidArgument("customer.unmerged names no customer or merge", field="merge_id")
        survivor = event.survivor_id or event.merged_into_id
        await on_unmerged(session, env.tenant_id, event.restored_id, survivor, event.merge_id)

    async def forgotten(session: AsyncSession, env: Envelope) -> None:
        event = payload(env, pb.CustomerForgotten)
        ids = list(dict.fromkeys([event.customer_id, *event.forgotten_ids]))
        await on_forgotten(session, env.tenant_id, ids)

    handlers: dict[str, Handler] = {
        "customer.merged": merged,
        "customer.unmerged": unmerged,
        "customer.forgotten": forgotten,
    }
    return Subscription.to("identity", name, handlers)
