"""customer.unmerged in the funnel: what the merge folded into the survivor comes back (the
restored customer's steps, attribution and orders; the survivor's own steps and attribution as
they were), repeat buyers are recounted, and later events for the restored id count for it."""

from __future__ import annotations

from nats.aio.client import Client
from test_funnel import STEPS, assigned, funnel, lead, sep, settle, steps
from ulid import ULID

from closedloop.events.v1 import identity_events_pb2 as idev
from closedloop.retention.v1 import retention_pb2 as pb
from loopkit_dev.testing import RunningService
from retention_helpers import Stub, customer, paid, publish, tenant


def total(**found: int) -> dict[str, int]:
    return {**dict.fromkeys(STEPS, 0), **found}


async def test_unmerge_gives_the_funnel_back(
    stub: Stub, nats_client: Client, retention: RunningService
) -> None:
    nc, t = nats_client, tenant()
    s, g = customer(), customer()
    await lead(nc, t, s, sep(10), channel="ch-s")
    await paid(nc, t, s, 5, at=sep(15), order_id="o-s1")
    await lead(nc, t, g, sep(5), channel="ch-g")
    await assigned(nc, t, g, sep(6))
    await paid(nc, t, g, 5, at=sep(8), order_id="o-g1")
    apart = total(exposed=2, leads=2, assigned=1, first_paid=2, paid_orders=2)
    await settle(stub, t, apart)

    merge_id = str(ULID())
    merged = idev.CustomerMerged(survivor_id=s, merged_id=g, reason="same", merge_id=merge_id)
    await publish(nc, "identity", "customer.merged", t, s, merged, at=sep(20))
    one = total(exposed=1, leads=1, assigned=1, first_paid=1, repeat_buyers=1, paid_orders=2)
    await settle(stub, t, one)
    # The survivor took the merged customer's earlier attribution.
    assert steps((await funnel(stub, t, channel_id="ch-g")).total) == one

    unmerged = idev.CustomerUnmerged(
        restored_id=g, survivor_id=s, reason="not the same", merge_id=merge_id, merged_into_id=s
    )
    await publish(nc, "identity", "customer.unmerged", t, g, unmerged, at=sep(21))
    found = await settle(stub, t, apart, granularity=pb.FUNNEL_GRANULARITY_WEEK)
    weekly = {p.start.ToDatetime().day: steps(p) for p in found.periods}
    assert weekly[31]["leads"] == 1  # g's lead of 5 September (week of 31 August) is g's again
    assert weekly[7]["leads"] == 1 and weekly[7]["first_paid"] == 1  # s's lead, g's payment
    assert weekly[14]["first_paid"] == 1  # s's first payment is its own again
    by_g = await funnel(stub, t, channel_id="ch-g")
    assert steps(by_g.total) == total(exposed=1, leads=1, assigned=1, first_paid=1, paid_orders=1)
    by_s = await funnel(stub, t, channel_id="ch-s")
    assert steps(by_s.total) == total(exposed=1, leads=1, first_paid=1, paid_orders=1)
    assert by_g.total.medians.assigned_to_first_paid_s == 2 * 86400

    # Later events for the restored id are its own: its second order makes it a repeat buyer.
    await paid(nc, t, g, 5, at=sep(22), order_id="o-g2")
    after = total(exposed=2, leads=2, assigned=1, first_paid=2, repeat_buyers=1, paid_orders=3)
    await settle(stub, t, after)
    assert (await funnel(stub, t, channel_id="ch-g")).total.steps.repeat_buyers == 1


async def test_an_erased_customer_is_not_given_back_by_a_later_unmerge(
    stub: Stub, nats_client: Client, retention: RunningService
) -> None:
    nc, t = nats_client, tenant()
    s, g = customer(), customer()
    await lead(nc, t, s, sep(10))
    await lead(nc, t, g, sep(5))
    await settle(stub, t, total(exposed=2, leads=2))
    merge_id = str(ULID())
    merged = idev.CustomerMerged(survivor_id=s, merged_id=g, reason="same", merge_id=merge_id)
    await publish(nc, "identity", "customer.merged", t, s, merged, at=sep(20))
    await settle(stub, t, total(exposed=1, leads=1))

    forgotten = idev.CustomerForgotten(customer_id=s, forgotten_ids=[s, g])
    await publish(nc, "identity", "customer.forgotten", t, s, forgotten, at=sep(21))
    await settle(stub, t, total())
    unmerged = idev.CustomerUnmerged(
        restored_id=g, survivor_id=s, reason="late", merge_id=merge_id, merged_into_id=s
    )
    x, y = customer(), customer()
    await lead(nc, t, x, sep(22))
    await lead(nc, t, y, sep(22))
    await settle(stub, t, total(exposed=2, leads=2))
    await publish(nc, "identity", "customer.unmerged", t, g, unmerged, at=sep(23))
    # The identity consumer applies its events in order: once y's merge into x shows, the
    # unmerge before it was handled, and nothing of g came back.
    later = idev.CustomerMerged(survivor_id=x, merged_id=y, reason="same", merge_id=str(ULID()))
    await publish(nc, "identity", "customer.merged", t, x, later, at=sep(24))
    await settle(stub, t, total(exposed=1, leads=1))
