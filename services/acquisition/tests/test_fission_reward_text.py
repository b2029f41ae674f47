"""A fission campaign's reward text: `points:<n>` and `coupon:<template>[:<days>]` must be
well formed when the campaign is created (retention grants them); any other text is a reward
people hand over and is taken as it is."""

from __future__ import annotations

import grpc
import pytest

from acquisition_helpers import Env
from closedloop.acquisition.v1 import acquisition_pb2 as pb


def _campaign(env: Env, reward: str) -> pb.CreateCampaignRequest:
    return pb.CreateCampaignRequest(
        tenant_id=env.tenant, name="Bring 3", fission_goal=3, fission_reward=reward
    )


async def test_well_formed_and_text_rewards_are_kept(env: Env) -> None:
    for reward in ("points:300", " Points: 50 ", "coupon:tpl-10", "coupon:tpl-10:7", "A mug", ""):
        created = (await env.stub.CreateCampaign(_campaign(env, reward))).campaign
        fetched = await env.stub.GetCampaign(
            pb.GetCampaignRequest(tenant_id=env.tenant, campaign_id=created.campaign_id)
        )
        assert fetched.campaign.fission_reward == created.fission_reward == reward


@pytest.mark.parametrize(
    ("reward", "says"),
    [
        ("points:0", "1 to 10,000,000"),
        ("points:lots", "whole number"),
        ("points:10000001", "1 to 10,000,000"),
        ("POINTS:-5", "whole number"),
        ("coupon:", "template id"),
        ("coupon:" + "t" * 65, "template id"),
        ("coupon:tpl:0", "1 to 3650 days"),
        ("coupon:tpl:soon", "1 to 3650 days"),
        ("coupon:tpl:3651", "1 to 3650 days"),
    ],
)
async def test_a_malformed_granted_reward_is_refused_naming_the_field(
    env: Env, reward: str, says: str
) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await env.stub.CreateCampaign(_campaign(env, reward))
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert says in (caught.value.details() or "")
    trailers = dict(caught.value.trailing_metadata() or ())
    assert trailers.get("closedloop-field") == "fission_reward"
    listed = await env.stub.ListCampaigns(pb.ListCampaignsRequest(tenant_id=env.tenant))
    assert reward not in [c.fission_reward for c in listed.campaigns]
