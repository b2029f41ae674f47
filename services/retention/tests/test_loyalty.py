"""Points from payments, reversed on refunds, never overdrawn; coupons redeem once."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import grpc
import pytest
from nats.aio.client import Client
from sqlalchemy import update

from closedloop.events.v1 import referral_events_pb2 as ref
from closedloop.events.v1 import retention_events_pb2 as ev
from closedloop.retention.v1 import retention_pb2 as pb
from closedloop_retention.models import LoyaltyAccountRow
from loopkit.events import unpack
from loopkit_dev.testing import RunningService, answer_of, eventually, read_events
from retention_helpers import (
    Stub,
    activity,
    balance,
    customer,
    days_ago,
    paid,
    publish,
    refunded,
    rpc_error,
    tenant,
    ts,
)


async def wait_balance(stub: Stub, t: str, cid: str, expected: int) -> None:
    async def check() -> bool:
        return await balance(stub, t, cid) == expected

    await eventually(check)


@pytest.mark.parametrize("retention", ["sqlite"], indirect=True)
async def test_the_read_calls_answer_beside_an_open_write_on_sqlite(
    retention: RunningService, stub: Stub, nats_client: Client
) -> None:
    """The calls that only read run in a deferred transaction (`UnitOfWork.read`): on SQLite
    they answer while another connection holds the write lock. They began IMMEDIATE, so each
    queued behind the writer (up to the 30 s busy timeout, then again on each retry)."""
    t, cid = tenant(), customer()
    await paid(nats_client, t, cid, 100)
    await wait_balance(stub, t, cid, 100)
    who = {"tenant_id": t, "customer_id": cid}
    async with retention.runtime.sessions() as writer, writer.begin():
        account = update(LoyaltyAccountRow).where(LoyaltyAccountRow.customer_id == cid)
        await writer.execute(account.values(balance=0))  # the write lock, held to the end
        loyalty = pb.GetLoyaltyAccountRequest(**who)  # one snapshot (REPEATABLE READ on PG)
        assert (await answer_of(stub.GetLoyaltyAccount(loyalty))).balance == 100  # committed
        found = await answer_of(stub.GetCustomerActivity(pb.GetCustomerActivityRequest(**who)))
        assert found.activity.customer_id == cid
        await answer_of(stub.GetLifecycle(pb.GetLifecycleRequest(**who)))
        await answer_of(stub.GetCustomerValue(pb.GetCustomerValueRequest(**who)))
        await answer_of(stub.GetSuggestions(pb.GetSuggestionsRequest(**who)))
        await answer_of(stub.ListWinBackOffers(pb.ListWinBackOffersRequest(**who)))
        await answer_of(stub.ListTopCustomers(pb.ListTopCustomersRequest(tenant_id=t)))
        segment = pb.PreviewSegmentRequest(tenant_id=t, expression="order_count > 0")
        assert (await answer_of(stub.PreviewSegment(segment))).count == 1
        funnel = pb.GetFunnelRequest(tenant_id=t, to=ts(days_ago(-1)))
        getattr(funnel, "from").CopyFrom(ts(days_ago(7)))
        await answer_of(stub.GetFunnel(funnel))


async def test_points_earned_on_payment_disappear_on_refund(
    stub: Stub, nats_client: Client
) -> None:
    t, cid = tenant(), customer()
    full = await paid(nats_client, t, cid, 199.99)
    part = await paid(nats_client, t, cid, 100)
    await wait_balance(stub, t, cid, 199 + 100)
    order_full = unpack(full, _order_paid()).order_id
    order_part = unpack(part, _order_paid()).order_id

    await refunded(nats_client, t, cid, order_full, 199.99, 199.99, full=True)
    await wait_balance(stub, t, cid, 100)
    # A partial refund of 40% takes back 40% of that order's points.
    await publish(
        nats_client,
        "conversion",
        "order.refunded",
        t,
        cid,
        _refund(order_part, 40, 40, 100),
    )
    await wait_balance(stub, t, cid, 60)
    a = await activity(stub, t, cid)
    assert a is not None and a.order_count == 1 and a.revenue_minor == 6000

    account = await stub.GetLoyaltyAccount(
        pb.GetLoyaltyAccountRequest(tenant_id=t, customer_id=cid)
    )
    assert sum(e.points for e in account.ledger) == account.balance == 60
    assert sorted(e.source for e in account.ledger) == ["order", "order", "refund", "refund"]

    async def events() -> list[str]:
        envs = await read_events(nats_client, "RETENTION", tenant_id=t)
        return [e.type for e in envs if e.type.startswith("points.")]

    await eventually(lambda: _has(events, 4))
    assert sorted(await events()) == [
        "points.earned",
        "points.earned",
        "points.redeemed",
        "points.redeemed",
    ]


async def _has(fetch: object, n: int) -> bool:
    return len(await fetch()) >= n  # type: ignore[operator]


def _order_paid() -> type:
    from closedloop.events.v1 import conversion_events_pb2 as conv

    return conv.OrderPaid


def _refund(order_id: str, yuan: float, total: float, amount: float) -> object:
    from closedloop.events.v1 import conversion_events_pb2 as conv
    from retention_helpers import cny

    return conv.OrderRefunded(
        order_id=order_id,
        refunded=cny(yuan),
        full=False,
        refunded_total=cny(total),
        order_amount=cny(amount),
    )


async def test_the_same_order_paid_twice_credits_points_once(
    stub: Stub, nats_client: Client
) -> None:
    t, cid = tenant(), customer()
    first = await paid(nats_client, t, cid, 50, order_id="order-dup")
    # The same envelope again (a relay re-publish) and the same order in a new envelope.
    await publish(nats_client, "conversion", "order.paid", t, cid, first, env=first)
    await paid(nats_client, t, cid, 50, order_id="order-dup")
    await paid(nats_client, t, cid, 10, order_id="order-marker")
    await wait_balance(stub, t, cid, 60)
    a = await activity(stub, t, cid)
    assert a is not None and a.order_count == 2


async def test_redeeming_more_than_the_balance_fails_and_changes_nothing(
    stub: Stub, nats_client: Client
) -> None:
    t, cid = tenant(), customer()
    await paid(nats_client, t, cid, 30)
    await wait_balance(stub, t, cid, 30)
    err = await rpc_error(
        stub.RedeemPoints(
            pb.RedeemPointsRequest(tenant_id=t, customer_id=cid, points=31, idempotency_key="k1")
        )
    )
    assert err.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert await balance(stub, t, cid) == 30
    ok = await stub.RedeemPoints(
        pb.RedeemPointsRequest(tenant_id=t, customer_id=cid, points=20, idempotency_key="k2")
    )
    assert ok.balance == 10
    # A retry of the same key returns the first result and spends nothing more.
    again = await stub.RedeemPoints(
        pb.RedeemPointsRequest(tenant_id=t, customer_id=cid, points=20, idempotency_key="k2")
    )
    assert again.entry.entry_id == ok.entry.entry_id
    assert await balance(stub, t, cid) == 10
    bad = await rpc_error(
        stub.RedeemPoints(pb.RedeemPointsRequest(tenant_id=t, customer_id=cid, points=0))
    )
    assert bad.code() == grpc.StatusCode.INVALID_ARGUMENT


async def test_concurrent_redemptions_never_overdraw(stub: Stub, retention: RunningService) -> None:
    t, cid = tenant(), customer()
    await stub.AdjustPoints(
        pb.AdjustPointsRequest(
            tenant_id=t, customer_id=cid, points=500, idempotency_key="seed", reason="welcome"
        )
    )

    async def redeem(i: int) -> bool:
        try:
            await stub.RedeemPoints(
                pb.RedeemPointsRequest(
                    tenant_id=t, customer_id=cid, points=10, idempotency_key=f"r{i}"
                )
            )
        except grpc.aio.AioRpcError as exc:
            assert exc.code() == grpc.StatusCode.FAILED_PRECONDITION, exc
            return False
        return True

    # 100 redemptions of 10 against 500 points (and the same keys retried at once).
    results = await asyncio.gather(
        *(redeem(i) for i in range(100)), *(redeem(i) for i in range(10))
    )
    account = await stub.GetLoyaltyAccount(
        pb.GetLoyaltyAccountRequest(tenant_id=t, customer_id=cid, ledger_limit=500)
    )
    redeemed = [e for e in account.ledger if e.source == "redeem"]
    assert len(redeemed) == 50
    assert account.balance == 0
    assert sum(results[:100]) == 50


async def test_referral_points_and_tiers(stub: Stub, nats_client: Client) -> None:
    t, cid = tenant(), customer()
    await publish(
        nats_client,
        "referral",
        "reward.granted",
        t,
        cid,
        ref.RewardGranted(reward_id="rw-1", kind=ref.REWARD_KIND_POINTS, points=1200, level=1),
    )
    await wait_balance(stub, t, cid, 1200)
    account = await stub.GetLoyaltyAccount(
        pb.GetLoyaltyAccountRequest(tenant_id=t, customer_id=cid)
    )
    assert account.tier.name == "silver"
    # Spending does not lower the tier.
    await stub.RedeemPoints(
        pb.RedeemPointsRequest(tenant_id=t, customer_id=cid, points=1000, idempotency_key="x")
    )
    account = await stub.GetLoyaltyAccount(
        pb.GetLoyaltyAccountRequest(tenant_id=t, customer_id=cid)
    )
    assert account.balance == 200 and account.tier.name == "silver"


async def test_coupons_redeem_once_and_expire(stub: Stub, nats_client: Client) -> None:
    t, cid = tenant(), customer()
    issued = await stub.IssueCoupon(
        pb.IssueCouponRequest(
            tenant_id=t, customer_id=cid, template_id="tpl-10off", value_minor=1000, valid_days=7
        )
    )
    coupon = issued.coupon
    assert coupon.status == pb.COUPON_STATUS_ISSUED
    done = await stub.RedeemCoupon(pb.RedeemCouponRequest(tenant_id=t, coupon_id=coupon.coupon_id))
    assert done.coupon.status == pb.COUPON_STATUS_REDEEMED
    again = await rpc_error(
        stub.RedeemCoupon(pb.RedeemCouponRequest(tenant_id=t, coupon_id=coupon.coupon_id))
    )
    assert again.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert "already redeemed" in (again.details() or "")

    late = await stub.IssueCoupon(
        pb.IssueCouponRequest(tenant_id=t, customer_id=cid, template_id="tpl", valid_days=7)
    )
    expired = await rpc_error(
        stub.RedeemCoupon(
            pb.RedeemCouponRequest(
                tenant_id=t,
                coupon_id=late.coupon.coupon_id,
                as_of=ts(days_ago(0) + timedelta(days=8)),
            )
        )
    )
    assert expired.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert "expired" in (expired.details() or "")
    missing = await rpc_error(
        stub.RedeemCoupon(pb.RedeemCouponRequest(tenant_id=t, coupon_id="nope"))
    )
    assert missing.code() == grpc.StatusCode.NOT_FOUND

    async def issued_events() -> list[ev.CouponIssued]:
        envs = await read_events(nats_client, "RETENTION", tenant_id=t)
        return [unpack(e, ev.CouponIssued) for e in envs if e.type == "coupon.issued"]

    await eventually(lambda: _has(issued_events, 2))
