"""Referral rewards taken back after their grant (reward.revoked): points reversed down to a zero
balance (spent points written off), coupons disabled, once, whatever order the events come in."""

from __future__ import annotations

import grpc
from nats.aio.client import Client

from closedloop.events.v1 import referral_events_pb2 as ref
from closedloop.retention.v1 import retention_pb2 as pb
from loopkit_dev.testing import eventually
from retention_helpers import Stub, balance, customer, publish, rpc_error, tenant


async def granted(nc: Client, t: str, cid: str, reward_id: str, points: int = 0) -> None:
    kind = ref.REWARD_KIND_POINTS if points else ref.REWARD_KIND_COUPON
    template = "" if points else "tpl-friend"
    event = ref.RewardGranted(
        reward_id=reward_id, kind=kind, points=points, coupon_template_id=template, level=1
    )
    await publish(nc, "referral", "reward.granted", t, cid, event)


async def revoked(nc: Client, t: str, cid: str, reward_id: str, points: int = 0) -> None:
    event = ref.RewardRevoked(
        reward_id=reward_id,
        reason="self_referral",
        points=points,
        kind=ref.REWARD_KIND_POINTS if points else ref.REWARD_KIND_COUPON,
        was_granted=True,
    )
    await publish(nc, "referral", "reward.revoked", t, cid, event)


async def account(stub: Stub, t: str, cid: str) -> pb.GetLoyaltyAccountResponse:
    return await stub.GetLoyaltyAccount(
        pb.GetLoyaltyAccountRequest(tenant_id=t, customer_id=cid, ledger_limit=50)
    )


async def wait_for(stub: Stub, t: str, cid: str, source: str) -> pb.GetLoyaltyAccountResponse:
    """The account once a ledger entry of `source` is in it."""
    found: list[pb.GetLoyaltyAccountResponse] = []

    async def check() -> bool:
        found.append(await account(stub, t, cid))
        return any(e.source == source for e in found[-1].ledger)

    await eventually(check)
    return found[-1]


async def wait_balance(stub: Stub, t: str, cid: str, expected: int) -> None:
    async def check() -> bool:
        return await balance(stub, t, cid) == expected

    await eventually(check)


async def settled(stub: Stub, nc: Client, t: str, cid: str, marker: str) -> None:
    """Everything published before has been handled: the consumer takes the stream in order."""
    before = await balance(stub, t, cid)
    await granted(nc, t, cid, marker, points=1)
    await wait_balance(stub, t, cid, before + 1)


async def test_a_self_referral_revealed_after_the_grant_reverses_the_points(
    stub: Stub, nats_client: Client
) -> None:
    t, cid = tenant(), customer()
    await granted(nats_client, t, cid, "rw-self", points=500)
    await wait_balance(stub, t, cid, 500)

    await revoked(nats_client, t, cid, "rw-self", points=500)
    after = await wait_for(stub, t, cid, "revoke")
    assert after.balance == 0
    assert [(e.points, e.source_ref) for e in after.ledger if e.source == "revoke"] == [
        (-500, "rw-self")
    ]
    assert after.lifetime_points == 0

    # The same revocation again (another envelope, as a republish would be): nothing more.
    await revoked(nats_client, t, cid, "rw-self", points=500)
    await settled(stub, nats_client, t, cid, "rw-marker-1")
    again = await account(stub, t, cid)
    assert again.balance == 1
    assert len([e for e in again.ledger if e.source == "revoke"]) == 1


async def test_spent_points_are_written_off_never_a_negative_balance(
    stub: Stub, nats_client: Client
) -> None:
    t, cid = tenant(), customer()
    await granted(nats_client, t, cid, "rw-spent", points=1200)
    await wait_balance(stub, t, cid, 1200)
    await stub.RedeemPoints(
        pb.RedeemPointsRequest(tenant_id=t, customer_id=cid, points=1000, idempotency_key="gift")
    )

    await revoked(nats_client, t, cid, "rw-spent", points=1200)
    after = await wait_for(stub, t, cid, "revoke")
    assert after.balance == 0
    [entry] = [e for e in after.ledger if e.source == "revoke"]
    assert entry.points == -200
    assert "1000 already spent, written off" in entry.reason
    # The tier no longer counts the reward: lifetime points lose all 1200.
    assert after.lifetime_points == 0
    assert after.tier.name == "member"


async def test_a_revocation_handled_before_its_grant_hands_nothing_out(
    stub: Stub, nats_client: Client
) -> None:
    t, cid = tenant(), customer()
    await revoked(nats_client, t, cid, "rw-late", points=300)
    await granted(nats_client, t, cid, "rw-late", points=300)
    await settled(stub, nats_client, t, cid, "rw-marker-2")
    assert await balance(stub, t, cid) == 1


async def test_a_revoked_coupon_reward_can_no_longer_be_redeemed(
    stub: Stub, nats_client: Client
) -> None:
    t, cid = tenant(), customer()
    await granted(nats_client, t, cid, "rw-coupon")

    async def coupons() -> list[pb.Coupon]:
        return list((await account(stub, t, cid)).coupons)

    async def issued() -> bool:
        return len(await coupons()) == 1

    await eventually(issued)
    [coupon] = await coupons()
    assert coupon.status == pb.COUPON_STATUS_ISSUED

    await revoked(nats_client, t, cid, "rw-coupon")

    async def disabled() -> bool:
        return [c.status for c in await coupons()] == [pb.COUPON_STATUS_REVOKED]

    await eventually(disabled)
    refused = await rpc_error(
        stub.RedeemCoupon(pb.RedeemCouponRequest(tenant_id=t, coupon_id=coupon.coupon_id))
    )
    assert refused.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert "revoked" in (refused.details() or "")
