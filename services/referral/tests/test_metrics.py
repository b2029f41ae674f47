"""Business metrics are counted when the consumer's transaction commits (`loopkit.uow.on_commit`),
not inside it: a conversion and its instant reward show up on /metrics."""

from __future__ import annotations

from loopkit_dev.testing import eventually
from referral_helpers import Env


async def _sample(env: Env, name: str, labels: str = "") -> float:
    """The value of one series on the service's /metrics (process-wide counters)."""
    async with env.http() as http:
        text = (await http.get("/metrics")).text
    prefix = f"{name}{{{labels}" if labels else name
    total = 0.0
    for line in text.splitlines():
        if line.startswith(prefix) and not line.startswith("#"):
            total += float(line.rsplit(" ", 1)[1])
    return total


async def test_a_conversion_and_its_reward_are_counted_after_commit(env: Env) -> None:
    program = await env.program(hold_seconds=0)
    _, newcomer, _ = await env.referred(program)
    converted = await _sample(env, "closedloop_referrals_converted_total")
    granted = await _sample(env, "closedloop_rewards_granted_total", 'kind="points"')

    await env.paid(newcomer)
    await env.wait_events("reward.granted", 2)  # the referrer's and the newcomer's

    async def counted() -> bool:
        now_converted = await _sample(env, "closedloop_referrals_converted_total")
        now_granted = await _sample(env, "closedloop_rewards_granted_total", 'kind="points"')
        return now_converted >= converted + 1 and now_granted >= granted + 2

    await eventually(counted)
