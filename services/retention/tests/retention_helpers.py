"""Publishing the producers' events the way they do, and reading retention's answers."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import grpc
import pytest
from google.protobuf.message import Message
from google.protobuf.timestamp_pb2 import Timestamp
from nats.aio.client import Client
from ulid import ULID

from closedloop.common.v1 import common_pb2 as c
from closedloop.events.v1 import acquisition_events_pb2 as acq
from closedloop.events.v1 import conversion_events_pb2 as conv
from closedloop.events.v1.envelope_pb2 import Envelope
from closedloop.retention.v1 import retention_pb2 as pb
from closedloop.retention.v1 import retention_pb2_grpc
from loopkit.events import new_envelope, subject_for
from loopkit.natsio import ensure_service_streams
from loopkit_dev.testing import eventually

APP = "wx-app-1"
Stub = retention_pb2_grpc.RetentionServiceStub


def tenant() -> str:
    return f"t-{str(ULID()).lower()[-10:]}"


def customer() -> str:
    return str(ULID())


def days_ago(n: float) -> datetime:
    return datetime.now(UTC) - timedelta(days=n)


def ts(at: datetime) -> Timestamp:
    out = Timestamp()
    out.FromDatetime(at)
    return out


async def publish(  # noqa: PLR0917 - the envelope fields, in their order
    nc: Client,
    producer: str,
    event_type: str,
    tenant_id: str,
    customer_id: str,
    payload: Message,
    *,
    at: datetime | None = None,
    env: Envelope | None = None,
) -> Envelope:
    """Publish like the producer's outbox relay: its stream, its subject, Nats-Msg-Id = id."""
    js = nc.jetstream()
    await ensure_service_streams(js, producer, replicas=1)
    env = env or new_envelope(
        producer=producer,
        event_type=event_type,
        tenant_id=tenant_id,
        customer_id=customer_id,
        payload=payload,
        occurred_at=at,
    )
    await js.publish(
        subject_for(producer, env.type), env.SerializeToString(), headers={"Nats-Msg-Id": env.id}
    )
    return env


def cny(yuan: float) -> c.Money:
    return c.Money(currency="CNY", amount_minor=round(yuan * 100))


async def lead(
    nc: Client,
    t: str,
    cid: str,
    *,
    at: datetime | None = None,
    consent: bool = True,
    tags: tuple[str, ...] = (),
    channel: str = "ch-1",
    openid: str | None = None,
) -> Envelope:
    ident = c.Identity(kind=c.IDENTITY_KIND_WECHAT_OPENID, scope=APP, value=openid or f"o-{cid}")
    return await publish(
        nc,
        "acquisition",
        "lead.captured",
        t,
        cid,
        acq.LeadCaptured(
            lead_id=str(ULID()),
            campaign_id="camp-1",
            channel_id=channel,
            attribution=acq.Attribution(first_channel_id=channel, channel_kind="qr_permanent"),
            consent_granted=consent,
            tags=list(tags),
            identities=[ident],
        ),
        at=at,
    )


async def paid(
    nc: Client,
    t: str,
    cid: str,
    yuan: float,
    *,
    at: datetime | None = None,
    order_id: str | None = None,
    rep: str = "rep-1",
    skus: tuple[str, ...] = ("tea",),
) -> Envelope:
    return await publish(
        nc,
        "conversion",
        "order.paid",
        t,
        cid,
        conv.OrderPaid(
            order_id=order_id or str(ULID()),
            rep_id=rep,
            amount=cny(yuan),
            items=[
                conv.OrderItem(sku=sku, name=sku.title(), quantity=1, unit_price=cny(yuan))
                for sku in skus
            ],
        ),
        at=at,
    )


async def refunded(  # noqa: PLR0917
    nc: Client, t: str, cid: str, order_id: str, yuan: float, total_yuan: float, *, full: bool
) -> Envelope:
    return await publish(
        nc,
        "conversion",
        "order.refunded",
        t,
        cid,
        conv.OrderRefunded(
            order_id=order_id,
            refunded=cny(yuan),
            full=full,
            refunded_total=cny(total_yuan),
            order_amount=cny(total_yuan if full else 0),
        ),
    )


async def interacted(nc: Client, stub: Stub, t: str, *cids: str, app: str = APP) -> None:
    """Each customer messaged the official account now (interaction.recorded), which opens
    WeChat's 48-hour customer-service window for a broadcast's text; waits until retention knows."""
    for cid in cids:
        await publish(
            nc,
            "acquisition",
            "interaction.recorded",
            t,
            cid,
            acq.InteractionRecorded(interaction_id=str(ULID()), kind="text", app_id=app),
        )

    async def known() -> bool:
        for cid in cids:
            found = await activity(stub, t, cid)
            if found is None or not found.HasField("last_interaction_at"):
                return False
        return True

    await eventually(known)


async def activity(stub: Stub, t: str, cid: str) -> pb.CustomerActivity | None:
    try:
        res = await stub.GetCustomerActivity(
            pb.GetCustomerActivityRequest(tenant_id=t, customer_id=cid)
        )
    except grpc.aio.AioRpcError as exc:
        if exc.code() == grpc.StatusCode.NOT_FOUND:
            return None
        raise
    return res.activity


async def balance(stub: Stub, t: str, cid: str) -> int:
    res = await stub.GetLoyaltyAccount(pb.GetLoyaltyAccountRequest(tenant_id=t, customer_id=cid))
    return res.balance


async def rpc_error(call: object) -> grpc.aio.AioRpcError:
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await call  # type: ignore[misc]
    return info.value
