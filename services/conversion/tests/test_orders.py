"""Opportunities, orders, payments and refunds; order events carry customer, amount and items."""

from __future__ import annotations

import grpc
import pytest

from closedloop.common.v1 import common_pb2 as c
from closedloop.conversion.v1 import conversion_pb2 as pb
from closedloop.events.v1 import conversion_events_pb2 as ev
from conversion_helpers import events, lead_envelope, make_rep, publish
from loopkit.events import unpack
from loopkit_dev.testing import eventually


def cny(fen: int, currency: str = "CNY") -> c.Money:
    return c.Money(currency=currency, amount_minor=fen)


def item(sku: str, qty: int, fen: int) -> ev.OrderItem:
    return ev.OrderItem(sku=sku, name=sku, quantity=qty, unit_price=cny(fen), category="course")


async def _code(call) -> grpc.StatusCode:
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await call
    return err.value.code()


async def test_paid_order_publishes_order_paid_with_the_lead(stub, tenant, nats_client):
    rep = await make_rep(stub, tenant, "seller")
    env = lead_envelope(tenant, "cust-1")
    await publish(nats_client, env)

    async def lead():
        listed = await stub.ListLeads(pb.ListLeadsRequest(tenant_id=tenant, customer_id="cust-1"))
        return [x for x in listed.leads if x.status == pb.LEAD_STATUS_ASSIGNED]

    await eventually(lead)
    [the_lead] = await lead()
    opp = (
        await stub.CreateOpportunity(
            pb.CreateOpportunityRequest(
                tenant_id=tenant, customer_id="cust-1", lead_id=the_lead.lead_id, title="Course"
            )
        )
    ).opportunity
    assert (opp.stage, opp.rep_id) == ("new", rep.rep_id)
    moved = await stub.MoveOpportunity(
        pb.MoveOpportunityRequest(
            tenant_id=tenant, opportunity_id=opp.opportunity_id, stage="proposal"
        )
    )
    assert moved.opportunity.stage == "proposal"
    order = (
        await stub.RecordOrder(
            pb.RecordOrderRequest(
                tenant_id=tenant,
                customer_id="cust-1",
                opportunity_id=opp.opportunity_id,
                items=[item("A", 2, 10000), item("B", 1, 5000)],
                amount=cny(25000),
            )
        )
    ).order
    assert order.status == pb.ORDER_STATUS_PLACED and order.lead_id == the_lead.lead_id
    paid = await stub.MarkOrderPaid(
        pb.MarkOrderPaidRequest(tenant_id=tenant, order_id=order.order_id)
    )
    assert paid.order.status == pb.ORDER_STATUS_PAID
    # Paying twice changes nothing and publishes nothing more.
    await stub.MarkOrderPaid(pb.MarkOrderPaidRequest(tenant_id=tenant, order_id=order.order_id))
    second = await stub.RecordOrder(
        pb.RecordOrderRequest(
            tenant_id=tenant,
            customer_id="cust-1",
            items=[item("C", 1, 3000)],
            amount=cny(3000),
            paid_at=paid.order.paid_at,
        )
    )
    assert second.order.status == pb.ORDER_STATUS_PAID

    async def paid_events():
        return await events(nats_client, tenant, "order.paid")

    await eventually(lambda: _at_least(paid_events, 2))
    found = await paid_events()
    assert len(found) == 2
    first, repeat = (unpack(e, ev.OrderPaid) for e in found)
    assert found[0].customer_id == "cust-1"
    assert (first.order_id, first.lead_id, first.rep_id) == (
        order.order_id,
        the_lead.lead_id,
        rep.rep_id,
    )
    assert first.amount == cny(25000) and [i.sku for i in first.items] == ["A", "B"]
    assert (first.repeat_purchase, repeat.repeat_purchase) == (False, True)

    async def placed():
        return await events(nats_client, tenant, "order.placed")

    await eventually(lambda: _at_least(placed, 2))
    assert len(await placed()) == 2
    # The lead is won: the rep's capacity is free again, and the report shows the revenue.
    closed = await stub.GetLead(pb.GetLeadRequest(tenant_id=tenant, lead_id=the_lead.lead_id))
    assert closed.lead.status == pb.LEAD_STATUS_WON
    report = await stub.GetRepReport(pb.GetRepReportRequest(tenant_id=tenant, rep_id=rep.rep_id))
    [figures] = report.reps
    assert figures.won_revenue == cny(28000) and figures.orders_paid == 2
    assert figures.leads_assigned == 1 and figures.conversion_rate == 1.0
    assert figures.opportunities_by_stage == {"won": 1}
    # The leaderboard: every rep, the one with revenue first.
    idle = await make_rep(stub, tenant, "idle")
    board = await stub.GetRepReport(pb.GetRepReportRequest(tenant_id=tenant))
    assert [r.rep_id for r in board.reps] == [rep.rep_id, idle.rep_id]


async def test_refunds_full_and_partial_and_bad_orders(stub, tenant, nats_client):
    rep = await make_rep(stub, tenant, "seller")
    order = (
        await stub.RecordOrder(
            pb.RecordOrderRequest(
                tenant_id=tenant, customer_id="cust-2", rep_id=rep.rep_id, amount=cny(10000)
            )
        )
    ).order
    assert (
        await _code(
            stub.RefundOrder(pb.RefundOrderRequest(tenant_id=tenant, order_id=order.order_id))
        )
        == grpc.StatusCode.FAILED_PRECONDITION
    )  # not paid yet
    await stub.MarkOrderPaid(pb.MarkOrderPaidRequest(tenant_id=tenant, order_id=order.order_id))
    partial = await stub.RefundOrder(
        pb.RefundOrderRequest(tenant_id=tenant, order_id=order.order_id, amount=cny(4000))
    )
    assert partial.order.status == pb.ORDER_STATUS_PARTIALLY_REFUNDED
    too_much = stub.RefundOrder(
        pb.RefundOrderRequest(tenant_id=tenant, order_id=order.order_id, amount=cny(6001))
    )
    assert await _code(too_much) == grpc.StatusCode.FAILED_PRECONDITION
    wrong_currency = stub.RefundOrder(
        pb.RefundOrderRequest(tenant_id=tenant, order_id=order.order_id, amount=cny(10, "USD"))
    )
    assert await _code(wrong_currency) == grpc.StatusCode.INVALID_ARGUMENT
    rest = await stub.RefundOrder(pb.RefundOrderRequest(tenant_id=tenant, order_id=order.order_id))
    assert rest.order.status == pb.ORDER_STATUS_REFUNDED and rest.order.refunded == cny(10000)

    async def refunded():
        return await events(nats_client, tenant, "order.refunded")

    await eventually(lambda: _at_least(refunded, 2))
    payloads = [unpack(e, ev.OrderRefunded) for e in await refunded()]
    assert [(p.refunded.amount_minor, p.full) for p in payloads] == [(4000, False), (6000, True)]

    def order_with(**kw) -> pb.RecordOrderRequest:
        return pb.RecordOrderRequest(tenant_id=tenant, customer_id="cust-2", **kw)

    assert (
        await _code(stub.RecordOrder(order_with(amount=cny(-1))))
        == grpc.StatusCode.INVALID_ARGUMENT
    )
    assert (
        await _code(stub.RecordOrder(order_with(amount=cny(100, "XYZ"))))
        == grpc.StatusCode.INVALID_ARGUMENT
    )
    assert await _code(stub.RecordOrder(order_with())) == grpc.StatusCode.INVALID_ARGUMENT
    bad_item = order_with(amount=cny(100), items=[item("A", 0, 100)])
    assert await _code(stub.RecordOrder(bad_item)) == grpc.StatusCode.INVALID_ARGUMENT
    assert (
        await _code(stub.MarkOrderPaid(pb.MarkOrderPaidRequest(tenant_id=tenant, order_id="nope")))
        == grpc.StatusCode.NOT_FOUND
    )


@pytest.mark.parametrize("conversion", ["sqlite"], indirect=True)
async def test_pipeline_stages_are_configurable_per_tenant(stub, tenant):
    await make_rep(stub, tenant, "seller")
    stages = await stub.SetPipelineStages(
        pb.SetPipelineStagesRequest(tenant_id=tenant, stages=["lead", "demo", "won", "lost"])
    )
    assert list(stages.stages) == ["lead", "demo", "won", "lost"]
    bad = stub.SetPipelineStages(pb.SetPipelineStagesRequest(tenant_id=tenant, stages=["a", "b"]))
    assert await _code(bad) == grpc.StatusCode.INVALID_ARGUMENT
    rep = (await stub.ListReps(pb.ListRepsRequest(tenant_id=tenant))).reps[0]
    opp = (
        await stub.CreateOpportunity(
            pb.CreateOpportunityRequest(tenant_id=tenant, customer_id="cust-3", rep_id=rep.rep_id)
        )
    ).opportunity
    assert opp.stage == "lead"
    wrong = stub.MoveOpportunity(
        pb.MoveOpportunityRequest(
            tenant_id=tenant, opportunity_id=opp.opportunity_id, stage="proposal"
        )
    )
    assert await _code(wrong) == grpc.StatusCode.INVALID_ARGUMENT
    await stub.MoveOpportunity(
        pb.MoveOpportunityRequest(tenant_id=tenant, opportunity_id=opp.opportunity_id, stage="lost")
    )
    reopen = stub.MoveOpportunity(
        pb.MoveOpportunityRequest(tenant_id=tenant, opportunity_id=opp.opportunity_id, stage="demo")
    )
    assert await _code(reopen) == grpc.StatusCode.FAILED_PRECONDITION


async def _at_least(fetch, n: int) -> bool:
    return len(await fetch()) >= n
