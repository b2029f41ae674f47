"""Builders for referral tests: the running services, API shortcuts, and the producers' events
(acquisition's leads, conversion's orders, identity's merges) published as their relays would."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import httpx
from google.protobuf.message import Message
from google.protobuf.timestamp_pb2 import Timestamp
from nats.aio.client import Client

from closedloop.common.v1 import common_pb2 as c
from closedloop.events.v1 import acquisition_events_pb2 as acq
from closedloop.events.v1 import conversion_events_pb2 as conv
from closedloop.events.v1 import referral_events_pb2 as ev
from closedloop.events.v1.envelope_pb2 import Envelope
from closedloop.identity.v1 import identity_pb2, identity_pb2_grpc
from closedloop.referral.v1 import referral_pb2 as pb
from closedloop.referral.v1 import referral_pb2_grpc
from loopkit.events import new_envelope, subject_for
from loopkit.natsio import ensure_service_streams
from loopkit_dev.testing import RunningService, eventually, read_events

APP = "wx-ref-app"
# More than this many newcomers from one referrer within 10 minutes are held for review.
BURST_THRESHOLD = 3


@dataclass
class Services:
    identity: RunningService
    referral: RunningService
    slots: Iterator[int]


def at(moment: datetime) -> Timestamp:
    value = Timestamp()
    value.FromDatetime(moment)
    return value


def openid(value: str) -> c.Identity:
    return c.Identity(kind=c.IDENTITY_KIND_WECHAT_OPENID, scope=APP, value=value)


@dataclass
class Env:
    identity: RunningService
    referral: RunningService
    tenant: str
    nc: Client
    _published: list[str] = field(default_factory=list)
    _marker_program: pb.Program | None = None

    @property
    def stub(self) -> referral_pb2_grpc.ReferralServiceStub:
        return referral_pb2_grpc.ReferralServiceStub(self.referral.channel)

    @property
    def identity_stub(self) -> identity_pb2_grpc.IdentityServiceStub:
        return identity_pb2_grpc.IdentityServiceStub(self.identity.channel)

    def http(self) -> httpx.AsyncClient:
        return httpx.AsyncClient(base_url=self.referral.http_url, timeout=60)

    # --- API shortcuts -------------------------------------------------------------------

    async def customer(self, name: str = "") -> tuple[str, str]:
        """A customer known to identity by an openid: (customer id, openid)."""
        oid = f"o-{name}-{uuid.uuid4().hex[:10]}"
        answer = await self.identity_stub.ResolveCustomer(
            identity_pb2.ResolveCustomerRequest(
                tenant_id=self.tenant, identities=[openid(oid)], actor="test"
            )
        )
        return answer.customer.customer_id, oid

    async def program(self, **overrides: Any) -> pb.Program:
        fields: dict[str, Any] = {
            "tenant_id": self.tenant,
            "name": "Bring a friend",
            "referrer_reward": pb.Reward(kind=ev.REWARD_KIND_POINTS, points=500),
            "trigger": pb.REWARD_TRIGGER_FIRST_PAID_ORDER,
            "newcomer_reward": pb.Reward(kind=ev.REWARD_KIND_POINTS, points=100),
            "hold_seconds": 14 * 86400,
            "channel_id": "ch-referral",
            "campaign_id": "camp-ref",
            "landing_url": "https://shop.example.com/landing?from=share",
        }
        fields.update(overrides)
        answer = await self.stub.CreateProgram(
            pb.CreateProgramRequest(program=pb.Program(**fields))
        )
        return answer.program

    async def code(self, customer_id: str, program: pb.Program, **kw: Any) -> str:
        answer = await self.stub.CreateReferralCode(
            pb.CreateReferralCodeRequest(
                tenant_id=self.tenant, customer_id=customer_id, program_id=program.program_id, **kw
            )
        )
        return answer.code

    async def visit(self, code: str, **params: str) -> httpx.Response:
        async with self.http() as client:
            return await client.get(f"/r/{code}", params=params, follow_redirects=False)

    async def get_referral(self, newcomer: str) -> pb.GetReferralResponse:
        return await self.stub.GetReferral(
            pb.GetReferralRequest(tenant_id=self.tenant, newcomer_customer_id=newcomer)
        )

    async def wait_referral(self, newcomer: str) -> pb.GetReferralResponse:
        found: list[pb.GetReferralResponse] = []

        async def check() -> bool:
            try:
                found.append(await self.get_referral(newcomer))
            except Exception:
                return False
            return True

        await eventually(check)
        return found[-1]

    async def rewards(self, **filters: Any) -> list[pb.RewardRecord]:
        answer = await self.stub.ListRewards(
            pb.ListRewardsRequest(tenant_id=self.tenant, **filters)
        )
        return list(answer.rewards)

    async def wait_rewards(self, count: int, **filters: Any) -> list[pb.RewardRecord]:
        found: list[list[pb.RewardRecord]] = []

        async def check() -> bool:
            found.append(await self.rewards(**filters))
            return len(found[-1]) >= count

        await eventually(check)
        return found[-1]

    # --- the producers' events -----------------------------------------------------------

    async def publish(
        self, producer: str, event_type: str, customer_id: str, payload: Message, **kw: Any
    ) -> Envelope:
        env = new_envelope(
            producer=producer,
            event_type=event_type,
            tenant_id=self.tenant,
            customer_id=customer_id,
            payload=payload,
            **kw,
        )
        await self.republish(env)
        return env

    async def republish(self, env: Envelope, *, dedupe: bool = True) -> None:
        """Publishes as the producer's relay would (`dedupe=False`: a redelivered copy that
        JetStream does not drop, so only the consumer's inbox stands between it and a repeat)."""
        js = self.nc.jetstream()
        if env.producer not in self._published:
            await ensure_service_streams(js, env.producer, replicas=1)
            self._published.append(env.producer)
        await js.publish(
            subject_for(env.producer, env.type),
            env.SerializeToString(),
            headers={"Nats-Msg-Id": env.id} if dedupe else None,
        )

    async def lead(
        self,
        customer_id: str,
        *,
        code: str = "",
        referrer: str = "",
        oid: str = "",
        lead_id: str = "",
    ) -> Envelope:
        event = acq.LeadCaptured(
            lead_id=lead_id or f"lead-{uuid.uuid4().hex[:10]}",
            campaign_id="camp-ref",
            channel_id="ch-referral",
            attribution=acq.Attribution(
                channel_kind="referral" if code or referrer else "qr_temporary",
                referral_code=code,
                referrer_customer_id=referrer,
            ),
            consent_granted=True,
            identities=[openid(oid)] if oid else [],
        )
        return await self.publish("acquisition", "lead.captured", customer_id, event)

    async def paid(
        self, customer_id: str, order_id: str = "", amount: int = 10_000, **kw: Any
    ) -> Envelope:
        event = conv.OrderPaid(
            order_id=order_id or f"ord-{uuid.uuid4().hex[:10]}",
            rep_id="rep-1",
            amount=c.Money(currency="CNY", amount_minor=amount),
        )
        return await self.publish("conversion", "order.paid", customer_id, event, **kw)

    async def refunded(
        self, customer_id: str, order_id: str, amount: int = 10_000, **kw: Any
    ) -> Envelope:
        event = conv.OrderRefunded(
            order_id=order_id,
            refunded=c.Money(currency="CNY", amount_minor=amount),
            full=True,
            refunded_total=c.Money(currency="CNY", amount_minor=amount),
            order_amount=c.Money(currency="CNY", amount_minor=amount),
        )
        return await self.publish("conversion", "order.refunded", customer_id, event, **kw)

    async def events(self, event_type: str) -> list[Envelope]:
        found = await read_events(self.nc, "REFERRAL", tenant_id=self.tenant)
        return [e for e in found if e.type == event_type]

    async def wait_events(self, event_type: str, count: int = 1) -> list[Envelope]:
        found: list[list[Envelope]] = []

        async def check() -> bool:
            found.append(await self.events(event_type))
            return len(found[-1]) >= count

        await eventually(check)
        return found[-1]

    async def settled(self) -> None:
        """Waits until the lead and order consumers handled everything published before: a marker
        newcomer's lead and order go through them after the earlier events."""
        if self._marker_program is None:
            self._marker_program = await self.program(name="marker")
        _, newcomer, _ = await self.referred(self._marker_program)
        before = len(await self.events("referral.converted"))
        await self.paid(newcomer)
        await self.wait_events("referral.converted", before + 1)

    async def referred(
        self, program: pb.Program, *, name: str = "b", **kw: Any
    ) -> tuple[str, str, pb.GetReferralResponse]:
        """A referrer with a code and a newcomer who left a lead with it: (referrer, newcomer,
        the referral)."""
        referrer = kw.pop("referrer", None) or (await self.customer("a"))[0]
        code = await self.code(referrer, program)
        newcomer, _ = await self.customer(name)
        await self.lead(newcomer, code=code)
        return referrer, newcomer, await self.wait_referral(newcomer)
