"""The referral tree and a program's stats."""

from __future__ import annotations

from closedloop.referral.v1 import referral_pb2 as pb
from referral_helpers import APP, Env


async def test_the_tree_and_the_stats_of_a_program(env: Env) -> None:
    program = await env.program(hold_seconds=0)
    a, b, _ = await env.referred(program, name="b")
    _, c, _ = await env.referred(program, referrer=a, name="c")
    _, d, _ = await env.referred(program, referrer=b, name="d")
    await env.visit(await env.code(a, program), openid="o-someone", appid=APP)
    await env.paid(b)
    await env.settled()

    tree = await env.stub.GetReferralTree(
        pb.GetReferralTreeRequest(tenant_id=env.tenant, customer_id=a, depth=2)
    )
    assert [(n.customer_id, n.referrer_customer_id, n.depth) for n in tree.nodes] == [
        (a, "", 0),
        (b, a, 1),
        (c, a, 1),
        (d, b, 2),
    ]
    assert [n.converted for n in tree.nodes] == [False, True, False, False]
    shallow = await env.stub.GetReferralTree(
        pb.GetReferralTreeRequest(tenant_id=env.tenant, customer_id=a, depth=1)
    )
    assert [n.customer_id for n in shallow.nodes] == [a, b, c]

    stats = await env.stub.GetProgramStats(
        pb.GetProgramStatsRequest(tenant_id=env.tenant, program_id=program.program_id)
    )
    assert (stats.codes, stats.visits, stats.referrals, stats.converted) == (2, 1, 3, 1)
    assert stats.viral_coefficient == 1.5
    assert stats.rewards_granted == 2  # b's order: a (level 1) and b's welcome reward
    assert stats.mean_seconds_to_convert >= 0
    assert [(t.customer_id, t.newcomers, t.converted) for t in stats.top_referrers] == [
        (a, 2, 1),
        (b, 1, 0),
    ]


async def test_business_metrics_are_exported(env: Env) -> None:
    program = await env.program(trigger=pb.REWARD_TRIGGER_LEAD, hold_seconds=0)
    referrer, _ = await env.customer("a")
    await env.visit(await env.code(referrer, program))
    _, newcomer, _ = await env.referred(program, referrer=referrer)
    await env.paid(newcomer)
    await env.wait_events("reward.granted", 2)
    await env.wait_events("referral.converted")
    async with env.http() as http:
        scrape = (await http.get("/metrics")).text

    def value(name: str, label: str = "") -> float:
        lines = [
            line
            for line in scrape.splitlines()
            if line.startswith(name) and label in line and not line.startswith("#")
        ]
        assert lines, name
        return float(lines[0].rsplit(" ", 1)[1])

    assert value("closedloop_share_visits", 'program="active"') >= 1
    assert value("closedloop_referrals_converted") >= 1
    assert value("closedloop_rewards_granted", 'kind="points"') >= 2
