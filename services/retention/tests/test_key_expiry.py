"""A client's ledger keys (RedeemPoints, AdjustPoints) last CLOSEDLOOP_IDEMPOTENCY_KEY_RETENTION_S,
as CaptureLead's do; the ledger's own keys (an order's, a reward's) stay, so an order paid long
ago still never credits twice."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from nats.aio.client import Client
from sqlalchemy import select, update

from closedloop.retention.v1 import retention_pb2 as pb
from closedloop_retention.models import Base, LedgerRow
from loopkit_dev.testing import RunningService, eventually
from retention_helpers import Stub, balance, customer, paid, tenant


async def _balance_is(stub: Stub, t: str, cid: str, expected: int) -> None:
    async def check() -> bool:
        return await balance(stub, t, cid) == expected

    await eventually(check)


async def test_client_keys_expire_and_order_keys_stay(
    stub: Stub, retention: RunningService, nats_client: Client
) -> None:
    runtime = retention.runtime
    retention_s = runtime.settings.idempotency_key_retention_s
    t, cid = tenant(), customer()
    await paid(nats_client, t, cid, 50, order_id="order-long-ago")
    await _balance_is(stub, t, cid, 50)
    await stub.AdjustPoints(
        pb.AdjustPointsRequest(
            tenant_id=t, customer_id=cid, points=20, idempotency_key="m1", reason="goodwill"
        )
    )
    redeem = pb.RedeemPointsRequest(tenant_id=t, customer_id=cid, points=10, idempotency_key="r1")
    first = await stub.RedeemPoints(redeem)
    assert first.balance == 60

    ledger = Base.metadata.tables[LedgerRow.__tablename__]
    long_ago = datetime.now(UTC) - timedelta(seconds=retention_s + 3600)
    async with runtime.engine.begin() as conn:
        await conn.execute(
            update(ledger).where(ledger.c.tenant_id == t).values(created_at=long_ago)
        )

    # What the service's sweep does every CLOSEDLOOP_RETENTION_SWEEP_INTERVAL_S.
    swept = await runtime.prune_expired()
    assert swept["points_ledger.idempotency_key"] >= 2
    async with runtime.engine.connect() as conn:
        keys = (
            await conn.scalars(select(ledger.c.idempotency_key).where(ledger.c.tenant_id == t))
        ).all()
    assert sorted(keys, key=str) == sorted([None, None, "order:order-long-ago"], key=str)

    # The client's key is a new request now: the same redemption is made again ...
    again = await stub.RedeemPoints(redeem)
    assert again.entry.entry_id != first.entry.entry_id and again.balance == 50
    # ... while the old order, paid again in a new envelope, still credits nothing.
    await paid(nats_client, t, cid, 50, order_id="order-long-ago")
    await paid(nats_client, t, cid, 5, order_id="order-marker")
    await _balance_is(stub, t, cid, 55)
