"""RFM quintiles and the top 20% by value; churn risk raised with a win-back offer for the
valuable, none for the rest."""

from __future__ import annotations

from nats.aio.client import Client

from closedloop.events.v1 import retention_events_pb2 as ev
from closedloop.retention.v1 import retention_pb2 as pb
from loopkit.events import unpack
from loopkit.wechat.sender import SandboxSender
from loopkit_dev.testing import RunningService, eventually, read_events
from retention_helpers import (
    Stub,
    activity,
    customer,
    days_ago,
    interacted,
    lead,
    paid,
    refunded,
    tenant,
    ts,
)


async def test_rfm_quintiles_and_top_customers(stub: Stub, nats_client: Client) -> None:
    t = tenant()
    buyers = [customer() for _ in range(10)]
    for i, cid in enumerate(buyers):
        # Higher index: more spent, more recently, more often.
        for n in range(1 + i // 3):
            await paid(nats_client, t, cid, 10 * (i + 1), at=days_ago(60 - 5 * i - n))

    async def loaded() -> bool:
        a = await activity(stub, t, buyers[-1])
        return (
            a is not None and a.order_count == 4 and await activity(stub, t, buyers[0]) is not None
        )

    await eventually(loaded)
    await eventually(lambda: _all_loaded(stub, t, buyers))
    top = await stub.ListTopCustomers(
        pb.ListTopCustomersRequest(tenant_id=t, recompute=True, limit=10)
    )
    assert [v.customer_id for v in top.customers] == [buyers[9], buyers[8]]
    best = await stub.GetCustomerValue(
        pb.GetCustomerValueRequest(tenant_id=t, customer_id=buyers[9])
    )
    assert (best.value.recency, best.value.frequency, best.value.monetary) == (5, 5, 5)
    assert best.value.top_customer
    worst = await stub.GetCustomerValue(
        pb.GetCustomerValueRequest(tenant_id=t, customer_id=buyers[0])
    )
    assert (worst.value.recency, worst.value.monetary) == (1, 1)
    assert not worst.value.top_customer
    seg = await stub.PreviewSegment(
        pb.PreviewSegmentRequest(tenant_id=t, expression="top_customer = true OR rfm_m >= 5")
    )
    assert seg.count == 2


async def _scores(stub: Stub, t: str, *cids: str) -> list[tuple[int, ...]]:
    """Rescore the tenant, then each customer's (recency, frequency, monetary, score, top)."""
    await stub.ListTopCustomers(pb.ListTopCustomersRequest(tenant_id=t, recompute=True, limit=10))
    out = []
    for cid in cids:
        v = (
            await stub.GetCustomerValue(pb.GetCustomerValueRequest(tenant_id=t, customer_id=cid))
        ).value
        out.append((v.recency, v.frequency, v.monetary, v.rfm_score, int(v.top_customer)))
    return out


async def test_rfm_follows_refunds(stub: Stub, nats_client: Client) -> None:
    """The rescore reads the inputs the order paths keep beside the scores: a partial refund
    lowers the revenue it ranks, a full refund of every order leaves no scores."""
    t = tenant()
    a, b = customer(), customer()
    await paid(nats_client, t, a, 100, at=days_ago(1), order_id="o-a")
    await paid(nats_client, t, b, 50, at=days_ago(5))

    async def bought() -> bool:
        return await _all_loaded(stub, t, [a, b])

    await eventually(bought)
    assert await _scores(stub, t, a, b) == [(3, 1, 3, 313, 1), (1, 1, 1, 111, 0)]

    # 60 of A's 100 refunded: B spent more now.
    await refunded(nats_client, t, a, "o-a", 60, 60, full=False)

    async def lowered() -> bool:
        found = await activity(stub, t, a)
        return found is not None and found.revenue_minor == 4000

    await eventually(lowered)
    assert await _scores(stub, t, a, b) == [(3, 1, 1, 311, 0), (1, 1, 3, 113, 1)]

    await refunded(nats_client, t, a, "o-a", 40, 100, full=True)

    async def gone() -> bool:
        found = await activity(stub, t, a)
        return found is not None and found.order_count == 0

    await eventually(gone)
    assert await _scores(stub, t, a, b) == [(0, 0, 0, 0, 0), (1, 1, 1, 111, 1)]


async def _all_loaded(stub: Stub, t: str, buyers: list[str]) -> bool:
    res = await stub.PreviewSegment(
        pb.PreviewSegmentRequest(tenant_id=t, expression="order_count > 0")
    )
    return res.count == len(buyers)


async def test_churn_risk_offers_win_back_to_the_valuable_only(
    stub: Stub, nats_client: Client
) -> None:
    t, repeat, once = tenant(), customer(), customer()
    await paid(nats_client, t, repeat, 200, at=days_ago(40))
    await paid(nats_client, t, repeat, 200, at=days_ago(30))
    await paid(nats_client, t, once, 20, at=days_ago(100))

    async def loaded() -> bool:
        a = await activity(stub, t, repeat)
        return a is not None and a.order_count == 2 and await activity(stub, t, once) is not None

    await eventually(loaded)
    await stub.SweepLifecycle(pb.SweepLifecycleRequest(tenant_id=t))

    value = await stub.GetCustomerValue(pb.GetCustomerValueRequest(tenant_id=t, customer_id=repeat))
    assert value.value.churn_risk >= 0.7
    account = await stub.GetLoyaltyAccount(
        pb.GetLoyaltyAccountRequest(tenant_id=t, customer_id=repeat)
    )
    assert [c.template_id for c in account.coupons] == ["win-back"]
    account = await stub.GetLoyaltyAccount(
        pb.GetLoyaltyAccountRequest(tenant_id=t, customer_id=once)
    )
    assert not account.coupons

    async def raised() -> list[str]:
        envs = await read_events(nats_client, "RETENTION", tenant_id=t)
        return [e.customer_id for e in envs if e.type == "churn_risk.raised"]

    async def both() -> bool:
        return sorted(await raised()) == sorted([repeat, once])

    await eventually(both)
    envs = await read_events(nats_client, "RETENTION", tenant_id=t)
    reasons = [unpack(e, ev.ChurnRiskRaised).reasons for e in envs if e.type == "churn_risk.raised"]
    assert all(any("overdue" in r for r in rs) for rs in reasons)
    # A second sweep raises nothing new.
    await stub.SweepLifecycle(pb.SweepLifecycleRequest(tenant_id=t))
    assert len(await raised()) == 2

    # The offer lapses unanswered: a second one; that one lapses too: let go (churned).
    later = days_ago(-15)
    await stub.SweepLifecycle(pb.SweepLifecycleRequest(tenant_id=t, as_of=ts(later)))
    account = await stub.GetLoyaltyAccount(
        pb.GetLoyaltyAccountRequest(tenant_id=t, customer_id=repeat)
    )
    assert [c.template_id for c in account.coupons] == ["win-back", "win-back"]
    await stub.SweepLifecycle(pb.SweepLifecycleRequest(tenant_id=t, as_of=ts(days_ago(-30))))
    life = await stub.GetLifecycle(pb.GetLifecycleRequest(tenant_id=t, customer_id=repeat))
    assert life.stage == ev.LIFECYCLE_STAGE_CHURNED
    assert life.reason == "2 win-back offers unanswered"
    # The one-time buyer was never offered anything and is not churned by it.
    life = await stub.GetLifecycle(pb.GetLifecycleRequest(tenant_id=t, customer_id=once))
    assert life.stage == ev.LIFECYCLE_STAGE_DECLINE


async def test_an_order_after_a_win_back_offer_resets_it(stub: Stub, nats_client: Client) -> None:
    t, cid = tenant(), customer()
    await paid(nats_client, t, cid, 100, at=days_ago(40))
    await paid(nats_client, t, cid, 100, at=days_ago(30))

    async def loaded() -> bool:
        a = await activity(stub, t, cid)
        return a is not None and a.order_count == 2

    await eventually(loaded)
    await stub.SweepLifecycle(pb.SweepLifecycleRequest(tenant_id=t))
    await paid(nats_client, t, cid, 100)

    async def back() -> bool:
        life = await stub.GetLifecycle(pb.GetLifecycleRequest(tenant_id=t, customer_id=cid))
        return life.stage == ev.LIFECYCLE_STAGE_STABLE

    await eventually(back)
    value = await stub.GetCustomerValue(pb.GetCustomerValueRequest(tenant_id=t, customer_id=cid))
    assert value.value.churn_risk < 0.7


async def test_cross_sell_from_what_similar_customers_bought(
    stub: Stub, nats_client: Client, retention: RunningService
) -> None:
    t = tenant()
    me, b, c, d = customer(), customer(), customer(), customer()
    await paid(nats_client, t, me, 10, skus=("tea", "cup"), rep="rep-9")
    await paid(nats_client, t, b, 10, skus=("tea", "pot"))
    await paid(nats_client, t, c, 10, skus=("cup", "pot", "kettle"))
    await paid(nats_client, t, d, 10, skus=("coffee", "grinder"))
    refund = await paid(nats_client, t, c, 10, skus=("mug",))

    async def loaded() -> bool:
        res = await stub.PreviewSegment(
            pb.PreviewSegmentRequest(tenant_id=t, expression="order_count > 0")
        )
        if res.count != 4:
            return False
        # c's second order (the mug) too: otherwise "mug gone" below could hold before it came.
        ideas = await stub.GetSuggestions(pb.GetSuggestionsRequest(tenant_id=t, customer_id=me))
        return "mug" in [s.sku for s in ideas.suggestions]

    await eventually(loaded)
    from closedloop.events.v1 import conversion_events_pb2 as conv

    order_id = unpack(refund, conv.OrderPaid).order_id
    await refunded(nats_client, t, c, order_id, 10, 10, full=True)

    async def mug_gone() -> bool:
        res = await stub.GetSuggestions(pb.GetSuggestionsRequest(tenant_id=t, customer_id=me))
        return "mug" not in [s.sku for s in res.suggestions]

    await eventually(mug_gone)
    res = await stub.GetSuggestions(pb.GetSuggestionsRequest(tenant_id=t, customer_id=me))
    assert [(s.sku, s.co_buyers) for s in res.suggestions] == [("pot", 2), ("kettle", 1)]
    assert res.owner_rep_id == "rep-9"

    # No quiet hours, whatever time of day the test runs.
    await stub.SetLifecycleRules(
        pb.SetLifecycleRulesRequest(
            tenant_id=t,
            rules=pb.LifecycleRules(quiet_start="00:00", quiet_end="00:00"),
            fields=["quiet_start", "quiet_end"],
        )
    )
    await lead(nats_client, t, me)
    await interacted(nats_client, stub, t, me)

    async def consented() -> bool:
        a = await activity(stub, t, me)
        return a is not None and a.consent

    await eventually(consented)
    sent = await stub.ScheduleBroadcast(
        pb.ScheduleBroadcastRequest(
            tenant_id=t, expression="consent = true", template="Try our {suggestion}!"
        )
    )

    async def delivered() -> bool:
        got = await stub.GetBroadcast(
            pb.GetBroadcastRequest(tenant_id=t, broadcast_id=sent.broadcast.broadcast_id)
        )
        return got.broadcast.stats.sent == 1

    await eventually(delivered)
    sender: SandboxSender = retention.runtime.parts["sender"]
    texts = [m.content for m, _ in sender.sent if m.customer_id == me]
    assert texts == ["Try our Pot!"]
