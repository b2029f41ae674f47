"""Share links over real HTTP: the visit is kept, published for acquisition, and redirected."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from urllib.parse import parse_qs, urlsplit

from closedloop.common.v1 import common_pb2 as c
from closedloop.events.v1 import referral_events_pb2 as ev
from closedloop.referral.v1 import referral_pb2 as pb
from loopkit.events import unpack
from referral_helpers import APP, Env, at


async def test_a_share_link_opened_in_wechat_redirects_with_the_code_and_publishes_the_visit(
    env: Env,
) -> None:
    program = await env.program()
    referrer, _ = await env.customer("a")
    code = await env.code(referrer, program)

    response = await env.visit(code, openid="o-visitor-1", appid=APP)

    assert response.status_code == 302
    target = urlsplit(response.headers["location"])
    assert target.netloc == "shop.example.com" and target.path == "/landing"
    assert parse_qs(target.query) == {"from": ["share"], "ref": [code]}
    [event] = await env.wait_events("share_visited")
    visited = unpack(event, ev.ShareVisited)
    assert visited.code == code and visited.referrer_customer_id == referrer
    assert visited.channel_id == "ch-referral" and visited.campaign_id == "camp-ref"
    assert visited.program_id == program.program_id
    assert [(i.kind, i.scope, i.value) for i in visited.visitor_identities] == [
        (c.IDENTITY_KIND_WECHAT_OPENID, APP, "o-visitor-1")
    ]


async def test_outside_wechat_the_visitor_gets_a_device_cookie_kept_on_the_next_visit(
    env: Env,
) -> None:
    program = await env.program()
    referrer, _ = await env.customer("a")
    code = await env.code(referrer, program)
    async with env.http() as client:
        first = await client.get(f"/r/{code}", follow_redirects=False)
        device = first.cookies.get("cl_device")
        second = await client.get(f"/r/{code.lower()}", follow_redirects=False)
    assert first.status_code == second.status_code == 302
    assert device
    assert "cl_device" not in second.cookies  # the browser's cookie was kept, not replaced
    stats = await env.stub.GetProgramStats(
        pb.GetProgramStatsRequest(tenant_id=env.tenant, program_id=program.program_id)
    )
    assert stats.visits == 2


async def test_an_unknown_code_is_a_404_page_and_no_touch(env: Env) -> None:
    response = await env.visit("NOSUCH22")
    assert response.status_code == 404
    assert "text/html" in response.headers["content-type"]
    assert "does not exist" in response.text
    weird = await env.visit("<script>")
    assert weird.status_code == 404 and "<script>" not in weird.text
    assert await env.events("share_visited") == []


async def test_a_visit_to_an_expired_program_is_recorded_but_earns_no_reward(env: Env) -> None:
    now = datetime.now(UTC)
    program = await env.program(
        starts_at=at(now - timedelta(days=30)),
        ends_at=at(now - timedelta(days=1)),
        trigger=pb.REWARD_TRIGGER_LEAD,
        hold_seconds=0,
    )
    referrer, _ = await env.customer("a")
    code = await env.code(referrer, program)
    newcomer, oid = await env.customer("b")

    response = await env.visit(code, openid=oid, appid=APP)
    assert response.status_code == 302
    await env.wait_events("share_visited")
    await env.lead(newcomer, code=code, oid=oid)
    await env.paid(newcomer)
    await env.settled()

    stats = await env.stub.GetProgramStats(
        pb.GetProgramStatsRequest(tenant_id=env.tenant, program_id=program.program_id)
    )
    assert stats.visits == 1 and stats.referrals == 0
    assert await env.rewards(beneficiary_customer_id=referrer) == []


async def test_the_visit_event_continues_the_callers_trace(env: Env) -> None:
    program = await env.program()
    referrer, _ = await env.customer("a")
    code = await env.code(referrer, program)
    trace_id = "4bf92f3577b34da6a3ce929d0e0e4736"
    async with env.http() as client:
        response = await client.get(
            f"/r/{code}",
            headers={"traceparent": f"00-{trace_id}-00f067aa0ba902b7-01"},
            follow_redirects=False,
        )
    assert response.status_code == 302
    [event] = await env.wait_events("share_visited")
    assert event.traceparent.split("-")[1] == trace_id
