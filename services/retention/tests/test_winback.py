"""Win-back offers for real: the offer goes to the customer through the sender (consent checked
again at send time, WeChat's 48-hour window respected) and win_back.offered tells conversion to
give the owner rep a task."""

from __future__ import annotations

from datetime import UTC, datetime

from nats.aio.client import Client

from closedloop.events.v1 import acquisition_events_pb2 as acq
from closedloop.events.v1 import conversion_events_pb2 as conv
from closedloop.events.v1 import retention_events_pb2 as ev
from closedloop.retention.v1 import retention_pb2 as pb
from loopkit.events import unpack
from loopkit.wechat.sender import SandboxSender
from loopkit_dev.testing import RunningService, eventually, read_events
from retention_helpers import Stub, activity, customer, days_ago, lead, paid, publish, tenant


async def valuable_customer(
    nc: Client, stub: Stub, t: str, cid: str, *, rep: str = "", recent_interaction: bool = True
) -> None:
    """A repeat buyer, overdue: a sweep raises their churn risk and makes an offer."""
    await lead(nc, t, cid, at=days_ago(60))
    if rep:
        await publish(
            nc, "conversion", "lead.assigned", t, cid, conv.LeadAssigned(lead_id="l", rep_id=rep)
        )
    await paid(nc, t, cid, 200, at=days_ago(40), rep=rep or "rep-1")
    await paid(nc, t, cid, 200, at=days_ago(30), rep=rep or "rep-1")
    if recent_interaction:
        await publish(nc, "acquisition", "interaction.recorded", t, cid, acq.InteractionRecorded())

    async def loaded() -> bool:
        a = await activity(stub, t, cid)
        return (
            a is not None
            and a.order_count == 2
            and a.consent  # the lead (another stream) has arrived too
            and (not rep or a.owner_rep_id == rep)
            and (not recent_interaction or a.HasField("last_interaction_at"))
        )

    await eventually(loaded)


async def offers_settled(stub: Stub, t: str, n: int) -> list[pb.WinBackOffer]:
    found: list[pb.WinBackOffer] = []

    async def settled() -> bool:
        nonlocal found
        res = await stub.ListWinBackOffers(pb.ListWinBackOffersRequest(tenant_id=t))
        found = list(res.offers)
        return len(found) == n and all(o.status != pb.WIN_BACK_STATUS_SCHEDULED for o in res.offers)

    await eventually(settled)
    return found


async def test_a_win_back_offer_is_sent_and_announced_for_the_rep(
    stub: Stub, nats_client: Client, retention: RunningService
) -> None:
    t, cid = tenant(), customer()
    await valuable_customer(nats_client, stub, t, cid, rep="rep-7")
    await stub.SweepLifecycle(pb.SweepLifecycleRequest(tenant_id=t))

    [offer] = await offers_settled(stub, t, 1)
    assert (offer.customer_id, offer.status, offer.owner_rep_id) == (
        cid,
        pb.WIN_BACK_STATUS_SENT,
        "rep-7",
    )
    assert offer.attempt == 1 and offer.value_minor == 2000  # a tenth of the mean order
    assert offer.delivery == pb.DELIVERY_STATUS_PENDING
    account = await stub.GetLoyaltyAccount(
        pb.GetLoyaltyAccountRequest(tenant_id=t, customer_id=cid)
    )
    assert [c.coupon_id for c in account.coupons] == [offer.coupon_id]

    sender: SandboxSender = retention.runtime.parts["sender"]
    [(message, receipt)] = [(m, r) for m, r in sender.sent if m.tenant_id == t]
    assert message.key == f"winback:{offer.win_back_id}"
    assert message.recipient.value == f"o-{cid}" and message.kind == "text"
    assert "20.00 yuan" in message.content and "/u/" in message.content  # the unsubscribe link
    assert offer.message_id == receipt.message_id

    announcements: list[ev.WinBackOffered] = []

    async def announced_once() -> bool:
        nonlocal announcements
        envs = await read_events(nats_client, "RETENTION", tenant_id=t)
        announcements = [unpack(e, ev.WinBackOffered) for e in envs if e.type == "win_back.offered"]
        return len(announcements) == 1

    await eventually(announced_once)
    [announced] = announcements
    assert announced.win_back_id == offer.win_back_id
    assert announced.owner_rep_id == "rep-7" and announced.coupon_id == offer.coupon_id
    assert announced.valid_until.ToDatetime(tzinfo=UTC) > datetime.now(UTC)


async def test_outside_the_48_hour_window_without_a_template_nothing_is_sent(
    stub: Stub, nats_client: Client, retention: RunningService
) -> None:
    t, cid = tenant(), customer()
    await valuable_customer(nats_client, stub, t, cid, recent_interaction=False)
    await stub.SweepLifecycle(pb.SweepLifecycleRequest(tenant_id=t))

    [offer] = await offers_settled(stub, t, 1)
    assert (offer.status, offer.reason) == (pb.WIN_BACK_STATUS_SKIPPED, "window_closed")
    sender: SandboxSender = retention.runtime.parts["sender"]
    assert not [m for m, _ in sender.sent if m.tenant_id == t]


async def test_a_withdrawn_consent_stops_the_offer_at_send_time(
    stub: Stub, nats_client: Client, retention: RunningService
) -> None:
    t, all_off, wechat_off = tenant(), customer(), customer()
    for cid in (all_off, wechat_off):
        # No interaction yet: the offer is made by the sweep below, after the withdrawals.
        await valuable_customer(nats_client, stub, t, cid, recent_interaction=False)
    first = await stub.WithdrawConsent(pb.WithdrawConsentRequest(tenant_id=t, customer_id=all_off))
    again = await stub.WithdrawConsent(pb.WithdrawConsentRequest(tenant_id=t, customer_id=all_off))
    assert first.withdrawn and not again.withdrawn
    await stub.WithdrawConsent(
        pb.WithdrawConsentRequest(tenant_id=t, customer_id=wechat_off, channel="wechat_openid")
    )
    await stub.SweepLifecycle(pb.SweepLifecycleRequest(tenant_id=t))

    offers = await offers_settled(stub, t, 2)
    outcome = {o.customer_id: (o.status, o.reason) for o in offers}
    assert outcome == {
        all_off: (pb.WIN_BACK_STATUS_SKIPPED, "no_consent"),
        wechat_off: (pb.WIN_BACK_STATUS_SKIPPED, "opted_out"),
    }
    sender: SandboxSender = retention.runtime.parts["sender"]
    assert not [m for m, _ in sender.sent if m.tenant_id == t]

    async def withdrawals() -> dict[str, str]:
        envs = await read_events(nats_client, "RETENTION", tenant_id=t)
        return {
            e.customer_id: unpack(e, ev.ConsentWithdrawn).channel
            for e in envs
            if e.type == "consent.withdrawn"
        }

    async def both_published() -> bool:
        return await withdrawals() == {all_off: "", wechat_off: "wechat_openid"}

    await eventually(both_published)
