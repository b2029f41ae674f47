"""Idempotency keys a client gave (RedeemPoints, AdjustPoints, IssueCoupon, ScheduleBroadcast)
and retention's own short-lived ones last CLOSEDLOOP_IDEMPOTENCY_KEY_RETENTION_S,
as CaptureLead's do; the ledger's own keys (an order's, a reward's) stay, so an order paid long
ago still never credits twice."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from nats.aio.client import Client
from sqlalchemy import select, update
from test_fission_rewards import goal
from test_reward_clawback import granted
from test_winback import offers_settled, valuable_customer

from closedloop.retention.v1 import retention_pb2 as pb
from closedloop_retention.models import (
    Base,
    BroadcastRow,
    CouponRow,
    LedgerRow,
    NoticeRow,
    WinBackOfferRow,
)
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


async def test_coupon_broadcast_offer_and_notice_keys_expire_and_reward_keys_stay(
    stub: Stub, retention: RunningService, nats_client: Client
) -> None:
    """IssueCoupon's and ScheduleBroadcast's keys, a win-back offer's (one per customer and day)
    and a finished notice's are forgotten after the key retention; a referral reward's coupon
    key stays, so the reward, granted again long after, still issues one coupon."""
    runtime = retention.runtime
    retention_s = runtime.settings.idempotency_key_retention_s
    t, cid, buyer, friend = tenant(), customer(), customer(), customer()
    coupon = pb.IssueCouponRequest(
        tenant_id=t, customer_id=cid, template_id="tpl", valid_days=30, idempotency_key="c1"
    )
    first_coupon = (await stub.IssueCoupon(coupon)).coupon.coupon_id
    assert (await stub.IssueCoupon(coupon)).coupon.coupon_id == first_coupon
    broadcast = pb.ScheduleBroadcastRequest(
        tenant_id=t, expression="tag = 'nobody'", template="hi", idempotency_key="b1"
    )
    first_broadcast = (await stub.ScheduleBroadcast(broadcast)).broadcast.broadcast_id
    assert (await stub.ScheduleBroadcast(broadcast)).broadcast.broadcast_id == first_broadcast
    await granted(nats_client, t, friend, "rw-coupon")
    # A fission goal of a customer retention cannot message: the notice is finished (skipped).
    await goal(nats_client, t, cid, "points:5")
    await valuable_customer(nats_client, stub, t, buyer)
    await stub.SweepLifecycle(pb.SweepLifecycleRequest(tenant_id=t))
    await offers_settled(stub, t, 1)

    tables = {
        row.__tablename__: Base.metadata.tables[row.__tablename__]
        for row in (CouponRow, BroadcastRow, WinBackOfferRow, NoticeRow)
    }

    async def keys() -> dict[str, list[str | None]]:
        found: dict[str, list[str | None]] = {}
        async with runtime.engine.connect() as conn:
            for name, table in tables.items():
                query = select(table.c.idempotency_key).where(table.c.tenant_id == t)
                found[name] = sorted((await conn.scalars(query)).all(), key=str)
        return found

    async def notice_finished() -> bool:
        async with runtime.engine.connect() as conn:
            notices = tables[NoticeRow.__tablename__]
            query = select(notices.c.status).where(notices.c.tenant_id == t)
            return (await conn.scalars(query)).all() == ["skipped"]

    await eventually(notice_finished)
    before = await keys()
    [offer_key] = before["win_back_offers"]
    assert offer_key is not None and offer_key.startswith(f"winback:{buyer}:")
    # The offer's coupon carries the offer's key.
    assert before["coupons"] == sorted(["c1", "reward:rw-coupon", offer_key], key=str)
    assert before["broadcasts"] == ["b1"]
    assert before["customer_notices"] == [f"fission:camp-fx:{cid}"]

    long_ago = datetime.now(UTC) - timedelta(seconds=retention_s + 3600)
    async with runtime.engine.begin() as conn:
        for name, table in tables.items():
            at = table.c.issued_at if name == "coupons" else table.c.created_at
            await conn.execute(update(table).where(table.c.tenant_id == t).values({at: long_ago}))

    # What the service's sweep does every CLOSEDLOOP_RETENTION_SWEEP_INTERVAL_S.
    swept = await runtime.prune_expired()
    for name in tables:
        assert swept[f"{name}.idempotency_key"] >= 1, name
    assert await keys() == {
        "coupons": [None, None, "reward:rw-coupon"],  # the client's and the win-back's went
        "broadcasts": [None],
        "win_back_offers": [None],
        "customer_notices": [None],
    }

    # The client's keys are new requests now ...
    assert (await stub.IssueCoupon(coupon)).coupon.coupon_id != first_coupon
    assert (await stub.ScheduleBroadcast(broadcast)).broadcast.broadcast_id != first_broadcast
    # ... while the reward, granted again in a new envelope, issues no second coupon.
    await granted(nats_client, t, friend, "rw-coupon")
    await granted(nats_client, t, friend, "rw-marker", points=7)
    await _balance_is(stub, t, friend, 7)
    account = await stub.GetLoyaltyAccount(
        pb.GetLoyaltyAccountRequest(tenant_id=t, customer_id=friend)
    )
    assert len(account.coupons) == 1
