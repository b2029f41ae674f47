"""Programs, referral codes and shares through the public gRPC API, including bad input."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import grpc
import pytest
from sqlalchemy import update

from closedloop.common.v1 import common_pb2 as c
from closedloop.events.v1 import referral_events_pb2 as ev
from closedloop.referral.v1 import referral_pb2 as pb
from closedloop_referral.models import ProgramRow
from loopkit.events import unpack
from loopkit_dev.testing import answer_of
from referral_helpers import Env, at


def field_of(exc: grpc.aio.AioRpcError) -> str:
    return dict(exc.trailing_metadata() or ()).get("closedloop-field", "")


@pytest.mark.parametrize("services", ["sqlite"], indirect=True)
async def test_a_read_call_answers_beside_an_open_write_on_sqlite(env: Env) -> None:
    """Get and List calls read in a deferred transaction (`UnitOfWork.read`): on SQLite one
    answers while another connection holds the write lock. They began IMMEDIATE, so each
    queued behind the writer (up to the 30 s busy timeout, then again on each retry)."""
    program = await env.program()
    async with env.referral.runtime.sessions() as writer, writer.begin():
        renamed = update(ProgramRow).where(ProgramRow.id == program.program_id)
        await writer.execute(renamed.values(name="renamed"))  # the write lock, held to the end
        request = pb.GetProgramRequest(tenant_id=env.tenant, program_id=program.program_id)
        answer = await answer_of(env.stub.GetProgram(request))
        assert answer.program.name == "Bring a friend"  # what was committed


async def test_a_program_is_created_and_read_back(env: Env) -> None:
    program = await env.program(
        levels=2,
        level2_percent=40,
        cap_per_period=10,
        cap_period_days=30,
        trigger=pb.REWARD_TRIGGER_ORDER_ABOVE_AMOUNT,
        min_order_amount=c.Money(currency="CNY", amount_minor=20_000),
    )
    got = await env.stub.GetProgram(
        pb.GetProgramRequest(tenant_id=env.tenant, program_id=program.program_id)
    )
    assert got.program == program
    assert program.levels == 2 and program.level2_percent == 40
    assert program.referrer_reward.points == 500
    assert program.attribution_window_seconds == 30 * 86400


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"name": ""}, "name"),
        ({"referrer_reward": pb.Reward()}, "referrer_reward.kind"),
        (
            {"referrer_reward": pb.Reward(kind=ev.REWARD_KIND_POINTS, points=0)},
            "referrer_reward.points",
        ),
        (
            {"referrer_reward": pb.Reward(kind=ev.REWARD_KIND_COUPON)},
            "referrer_reward.coupon_template_id",
        ),
        ({"trigger": pb.REWARD_TRIGGER_UNSPECIFIED}, "trigger"),
        ({"trigger": pb.REWARD_TRIGGER_ORDER_ABOVE_AMOUNT}, "min_order_amount"),
        ({"levels": 3}, "levels"),
        ({"levels": 2, "level2_percent": 100}, "level2_percent"),
        ({"hold_seconds": -1}, "hold_seconds"),
        ({"cap_per_period": 3}, "cap_period_days"),
        ({"channel_id": ""}, "channel_id"),
        ({"landing_url": "javascript:alert(1)"}, "landing_url"),
    ],
)
async def test_a_bad_program_is_refused_with_the_field(
    env: Env, overrides: dict[str, object], field: str
) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await env.program(**overrides)
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert field_of(err.value) == field


async def test_a_program_ending_before_it_starts_is_refused(env: Env) -> None:
    now = datetime.now(UTC)
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await env.program(starts_at=at(now), ends_at=at(now - timedelta(days=1)))
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT


async def test_another_tenants_program_and_code_are_not_found(env: Env) -> None:
    program = await env.program()
    customer, _ = await env.customer("a")
    code = await env.code(customer, program)
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await env.stub.GetProgram(
            pb.GetProgramRequest(tenant_id="other-tenant", program_id=program.program_id)
        )
    assert err.value.code() == grpc.StatusCode.NOT_FOUND
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await env.stub.RecordShare(
            pb.RecordShareRequest(
                tenant_id="other-tenant",
                customer_id=customer,
                code=code,
                content_id="article-1",
                target=ev.SHARE_TARGET_MOMENT,
            )
        )
    assert err.value.code() == grpc.StatusCode.NOT_FOUND
    assert field_of(err.value) == "code"


async def test_a_customer_gets_one_code_per_program_with_its_link(env: Env) -> None:
    program = await env.program()
    customer, _ = await env.customer("a")
    first = await env.stub.CreateReferralCode(
        pb.CreateReferralCodeRequest(
            tenant_id=env.tenant, customer_id=customer, program_id=program.program_id
        )
    )
    again = await env.stub.CreateReferralCode(
        pb.CreateReferralCodeRequest(
            tenant_id=env.tenant, customer_id=customer, program_id=program.program_id
        )
    )
    assert first.created and not again.created
    assert again.code == first.code and len(first.code) == 8
    assert first.url == f"https://r.example.com/r/{first.code}"


async def test_concurrent_first_calls_make_one_code(env: Env) -> None:
    program = await env.program()
    customer, _ = await env.customer("a")
    codes = await asyncio.gather(*(env.code(customer, program) for _ in range(6)))
    assert len(set(codes)) == 1


async def test_a_code_for_a_customer_identity_never_met_is_not_found(env: Env) -> None:
    program = await env.program()
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await env.code("01JUNKNOWNCUSTOMER00000000", program)
    assert err.value.code() == grpc.StatusCode.NOT_FOUND


async def test_a_share_is_recorded_and_published_with_its_own_link(env: Env) -> None:
    program = await env.program()
    customer, _ = await env.customer("a")
    share = await env.stub.RecordShare(
        pb.RecordShareRequest(
            tenant_id=env.tenant,
            customer_id=customer,
            program_id=program.program_id,
            content_id="poster-7",
            target=ev.SHARE_TARGET_GROUP,
        )
    )
    assert share.url.endswith(f"/r/{share.code}?s={share.share_id}")
    [event] = await env.wait_events("share.recorded")
    recorded = unpack(event, ev.ShareRecorded)
    assert event.customer_id == customer
    assert recorded.content_id == "poster-7" and recorded.target == ev.SHARE_TARGET_GROUP
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await env.stub.RecordShare(
            pb.RecordShareRequest(
                tenant_id=env.tenant, customer_id=customer, code=share.code, content_id="x"
            )
        )
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert field_of(err.value) == "target"
