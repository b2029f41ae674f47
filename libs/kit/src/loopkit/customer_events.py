"""Following the identity service's customer events, the same way in every stage service.

Each service keeps the customer ids it saw. When identity merges two customers, rows of the
merged id move to the survivor; when it forgets one, the service erases what it holds on them.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable, Sequence

from sqlalchemy import Table, update
from sqlalchemy.ext.asyncio import AsyncSession

from closedloop.events.v1 import identity_events_pb2 as pb
from closedloop.events.v1.envelope_pb2 import Envelope
from loopkit.consumer import Handler, Subscription
from loopkit.events import unpack

# (session, tenant_id, survivor_id, merged_id)
MergedHandler = Callable[[AsyncSession, str, str, str], Awaitable[None]]
# (session, tenant_id, every id the person had: the live one and those merged into it)
ForgottenHandler = Callable[[AsyncSession, str, Sequence[str]], Awaitable[None]]


def identity_subscription(
    *, on_merged: MergedHandler, on_forgotten: ForgottenHandler, name: str = "identity"
) -> Subscription:
    """A durable consumer of customer.merged and customer.forgotten calling the given handlers."""

    async def merged(session: AsyncSession, env: Envelope) -> None:
        event = unpack(env, pb.CustomerMerged)
        await on_merged(session, env.tenant_id, event.survivor_id, event.merged_id)

    async def forgotten(session: AsyncSession, env: Envelope) -> None:
        event = unpack(env, pb.CustomerForgotten)
        ids = list(dict.fromkeys([event.customer_id, *event.forgotten_ids]))
        await on_forgotten(session, env.tenant_id, ids)

    handlers: dict[str, Handler] = {"customer.merged": merged, "customer.forgotten": forgotten}
    return Subscription.to("identity", name, handlers)


async def repoint_customer(
    session: AsyncSession,
    columns: Iterable[tuple[Table, str]],
    *,
    tenant_id: str,
    from_id: str,
    to_id: str,
) -> int:
    """Move every (table, column) reference of `from_id` to `to_id` within the tenant.

    Tables with a uniqueness rule involving the customer (one lead per customer and campaign, say)
    must resolve the collision themselves before calling this.
    """
    moved = 0
    for table, column in columns:
        result = await session.execute(
            update(table)
            .where(table.c.tenant_id == tenant_id, table.c[column] == from_id)
            .values({column: to_id})
        )
        moved += int(getattr(result, "rowcount", 0) or 0)
    return moved
