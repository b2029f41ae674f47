"""Cost per lead over a date range uses the cost of that range: a channel's cost is spread
evenly over its life (creation to its end, or to now without one)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from google.protobuf.timestamp_pb2 import Timestamp

from acquisition_helpers import Env
from closedloop.acquisition.v1 import acquisition_pb2 as pb
from closedloop_acquisition.catalog.costs import cost_in_range, stopped_at


def at(value: datetime) -> Timestamp:
    out = Timestamp()
    out.FromDatetime(value)
    return out


def test_the_cost_of_a_range_is_its_share_of_the_channel_life() -> None:
    day0 = datetime(2026, 11, 1, tzinfo=UTC)
    day10 = day0 + timedelta(days=10)
    now = day0 + timedelta(days=30)
    # A 10-day channel costing 10 000: 1 000 a day.
    assert cost_in_range(10_000, day0, day10, None, None, now) == 10_000
    assert (
        cost_in_range(10_000, day0, day10, day0 + timedelta(days=2), day0 + timedelta(days=5), now)
        == 3_000
    )
    assert (
        cost_in_range(10_000, day0, day10, day0 - timedelta(days=5), day0 + timedelta(days=1), now)
        == 1_000
    )
    assert cost_in_range(10_000, day0, day10, day10, now, now) == 0
    assert cost_in_range(10_000, day0, day10, day0 + timedelta(days=5), None, now) == 5_000
    # Without an end: spread over its life so far (30 days).
    assert cost_in_range(30_000, day0, None, day0, day10, now) == 10_000
    # The first of expiry and deletion ends it.
    assert stopped_at(day10, day0 + timedelta(days=5)) == day0 + timedelta(days=5)
    assert stopped_at(None, None) is None


async def test_cost_per_lead_over_a_range_divides_that_range_cost(env: Env) -> None:
    campaign = await env.campaign()
    now = datetime.now(UTC)
    channel = await env.channel(
        campaign.campaign_id,
        kind=pb.CHANNEL_KIND_QR_TEMPORARY,
        scene=f"cost-{campaign.campaign_id[-8:]}",
        app_id=env.app_id,
        expires_at=at(now + timedelta(hours=2)),
        cost={"currency": "CNY", "amount_minor": 20_000},
    )

    async def cost(since: datetime | None, until: datetime | None) -> int:
        request = pb.GetChannelStatsRequest(tenant_id=env.tenant, channel_id=channel.channel_id)
        if since:
            getattr(request, "from").CopyFrom(at(since))
        if until:
            request.to.CopyFrom(at(until))
        return (await env.stub.GetChannelStats(request)).stats.cost.amount_minor

    assert await cost(None, None) == 20_000
    # The first hour of its two: about half (the channel was created a moment before `now`).
    first_hour = await cost(now - timedelta(days=1), now + timedelta(hours=1))
    assert 9_900 <= first_hour <= 10_100
    assert await cost(now + timedelta(hours=3), now + timedelta(hours=4)) == 0
    assert await cost(now - timedelta(days=1), now + timedelta(days=1)) == 20_000
