"""The funnel and retention's record of whom it erased (`c360_forgotten`): an event of a forgotten
customer adds nothing to the funnel, late or replayed, even once the funnel's own record of the
erasure is gone (a rebuild after the identity stream aged the customer.forgotten out)."""

from __future__ import annotations

from nats.aio.client import Client
from sqlalchemy import insert, text
from test_funnel import STEPS, assigned, funnel, lead, sep, settle, touch
from test_funnel_rollup import assert_rollup_is_a_recount

from closedloop.events.v1 import identity_events_pb2 as idev
from closedloop.events.v1 import referral_events_pb2 as ref
from closedloop_retention.main import DEFINITION
from closedloop_retention.models import C360ForgottenRow
from closedloop_retention.transport.rebuild_funnel import rebuild
from loopkit.events import new_envelope, stream_for, subject_for
from loopkit_dev.testing import RunningService, eventually
from retention_helpers import Stub, customer, paid, publish, tenant

FUNNEL_TABLES = ("funnel_steps", "funnel_orders", "funnel_sources")


def total(**found: int) -> dict[str, int]:
    return {**dict.fromkeys(STEPS, 0), **found}


async def rows_of(retention: RunningService, t: str, cid: str) -> dict[str, int]:
    """How many rows each funnel table holds of the customer (those holding any)."""
    found = {}
    async with retention.runtime.sessions() as s:
        for table in FUNNEL_TABLES:
            n = await s.scalar(
                text(f"SELECT count(*) FROM {table} WHERE tenant_id = :t AND customer_id = :c"),
                {"t": t, "c": cid},
            )
            if n:
                found[table] = n
    return found


async def late_events(nc: Client, t: str, gone: str, other: str) -> None:
    """Events of `gone` on every stream the funnel reads, and `other`'s naming them as referrer."""
    await touch(nc, t, gone, sep(12))
    await lead(nc, t, gone, sep(12))
    await assigned(nc, t, gone, sep(13))
    await paid(nc, t, gone, 5, at=sep(14), order_id="o-gone-late")
    await lead(nc, t, other, sep(15), referrer=gone)
    converted = ref.ReferralConverted(referral_id="rf-1", referrer_customer_id=gone)
    await publish(nc, "referral", "referral.converted", t, other, converted, at=sep(16))
    await paid(nc, t, other, 3, at=sep(17), order_id="o-other")  # the last on its stream


async def test_a_forgotten_customer_stays_out_of_the_funnel(
    stub: Stub, nats_client: Client, retention: RunningService
) -> None:
    nc, t = nats_client, tenant()
    gone, other = customer(), customer()
    await lead(nc, t, gone, sep(3))
    await paid(nc, t, gone, 5, at=sep(4), order_id="o-gone")
    await settle(stub, t, total(exposed=1, leads=1, first_paid=1, paid_orders=1))

    # Forgotten through identity's event (identity keeps the stream's message id to delete it).
    env = new_envelope(
        producer="identity",
        event_type="customer.forgotten",
        tenant_id=t,
        customer_id=gone,
        payload=idev.CustomerForgotten(customer_id=gone),
        occurred_at=sep(10),
    )
    await publish(nc, "identity", "customer.forgotten", t, gone, idev.CustomerForgotten(), env=env)

    async def erased_everywhere() -> bool:
        async with retention.runtime.sessions() as s:
            recorded = await s.scalar(
                text(
                    "SELECT count(*) FROM c360_forgotten WHERE tenant_id = :t AND customer_id = :c"
                ),
                {"t": t, "c": gone},
            )
        return bool(recorded) and not await rows_of(retention, t, gone)

    await eventually(erased_everywhere)
    await settle(stub, t, total())

    # Late events of theirs (and a newcomer they referred) change nothing about them.
    await late_events(nc, t, gone, other)
    newcomer = total(
        exposed=1, leads=1, first_paid=1, referred_newcomers=1, referred_paid=1, paid_orders=1
    )
    await settle(stub, t, newcomer)
    assert await rows_of(retention, t, gone) == {}

    # The identity stream drops the customer.forgotten (its max age), then the funnel is rebuilt
    # from the streams: the erased customer's events still there are not counted again.
    js = nc.jetstream()
    stored = await js.get_last_msg(
        stream_for("identity"), subject_for("identity", "customer.forgotten")
    )
    assert stored.data == env.SerializeToString()
    await js.delete_msg(stream_for("identity"), stored.seq)
    await rebuild(DEFINITION, retention.runtime.settings)
    await settle(stub, t, newcomer)
    assert await rows_of(retention, t, gone) == {}
    assert (await funnel(stub, t)).total.steps.referrers == 0
    await assert_rollup_is_a_recount(retention, t)


async def test_a_merge_into_a_forgotten_customer_brings_nothing_back(
    stub: Stub, nats_client: Client, retention: RunningService
) -> None:
    """Retention erased the survivor and the funnel holds no record of it (the customer.forgotten
    aged out of the identity stream before a rebuild): a merge into them erases the merged
    customer's rows instead of moving them under the forgotten id, and later events of the
    merged id add nothing."""
    nc, t = nats_client, tenant()
    survivor, merged, other = customer(), customer(), customer()
    await lead(nc, t, merged, sep(3))
    await assigned(nc, t, merged, sep(4))
    await settle(stub, t, total(exposed=1, leads=1, assigned=1))
    async with retention.runtime.sessions() as s, s.begin():
        await s.execute(
            insert(C360ForgottenRow).values(tenant_id=t, customer_id=survivor, forgotten_at=sep(5))
        )

    merge = idev.CustomerMerged(survivor_id=survivor, merged_id=merged, merge_id="m-1")
    await publish(nc, "identity", "customer.merged", t, survivor, merge, at=sep(6))
    await settle(stub, t, total())
    assert await rows_of(retention, t, survivor) == {}
    assert await rows_of(retention, t, merged) == {}

    await lead(nc, t, merged, sep(7))
    await lead(nc, t, other, sep(8))  # after the late one on the same stream
    await settle(stub, t, total(exposed=1, leads=1))
    assert await rows_of(retention, t, survivor) == {}
    assert await rows_of(retention, t, merged) == {}
    await assert_rollup_is_a_recount(retention, t)
