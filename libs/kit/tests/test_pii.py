"""Personal data in events: sealed by the relay under the customer's key, opened by consumers that
read it, unreadable everywhere once the key is destroyed (crypto-shredding)."""

from __future__ import annotations

from collections.abc import Sequence

import pytest
from nats.js import JetStreamContext
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from closedloop.common.v1 import common_pb2
from closedloop.events.v1.envelope_pb2 import Envelope
from closedloop.events.v1.identity_events_pb2 import CustomerCreated
from kit_testbed import KIT, Database, Stream
from loopkit import pii
from loopkit.consumer import EventConsumer, Subscription
from loopkit.events import Outbox, new_envelope
from loopkit.outbox import OutboxRelay
from loopkit_dev.testing import eventually

PHONE = "+8613800138000"
OPENID = "o6_bmjrPTlm6_2sgVt7hMZOPfL2M"
TENANT = "t-kit"


class KeyTable:
    """A KeySource over a dict: what identity's customer_keys table does, in memory."""

    def __init__(self) -> None:
        self.table: dict[str, bytes | None] = {}
        self.asked = 0

    async def keys(self, tenant_id: str, customer_ids: Sequence[str]) -> dict[str, bytes | None]:
        self.asked += 1
        for cid in customer_ids:
            self.table.setdefault(cid, pii.new_key())
        return {cid: self.table[cid] for cid in customer_ids}

    def erase(self, customer_id: str) -> None:
        self.table[customer_id] = None


def _created(producer: str, customer_id: str) -> Envelope:
    return new_envelope(
        producer=producer,
        event_type="customer.created",
        tenant_id=TENANT,
        customer_id=customer_id,
        payload=CustomerCreated(
            customer_id=customer_id,
            identities=[
                common_pb2.Identity(kind=common_pb2.IDENTITY_KIND_PHONE, value=PHONE),
                common_pb2.Identity(
                    kind=common_pb2.IDENTITY_KIND_WECHAT_OPENID, scope="wx1", value=OPENID
                ),
            ],
        ),
    )


def test_a_sealed_value_opens_only_for_its_own_customer() -> None:
    key = pii.new_key()
    sealed = pii.seal(key, TENANT, "c1", PHONE)
    assert PHONE not in sealed and pii.is_sealed(sealed)
    assert pii.unseal(key, TENANT, "c1", sealed) == PHONE
    with pytest.raises(pii.Unreadable):
        pii.unseal(key, TENANT, "c2", sealed)  # moved to another customer
    with pytest.raises(pii.Unreadable):
        pii.unseal(pii.new_key(), TENANT, "c1", sealed)


async def _opened_by_a_consumer(
    database: Database, stream: Stream, js: JetStreamContext, keys: pii.CachedKeys, name: str
) -> list[CustomerCreated]:
    seen: list[CustomerCreated] = []

    async def handler(session: AsyncSession, env: Envelope) -> None:
        msg = CustomerCreated()
        env.payload.Unpack(msg)
        seen.append(msg)

    consumer = EventConsumer(
        f"svc{stream.producer}",
        Subscription(
            name=name,
            stream=stream.name,
            subjects=[stream.subjects],
            handlers={"customer.created": handler},
        ),
        database.sessions,
        KIT,
        js,
        opener=pii.Opener(keys),
    )
    await consumer.start()

    async def one_seen() -> bool:
        await consumer.poll(timeout_s=0.2)
        return len(seen) == 1

    await eventually(one_seen)
    return seen


async def test_personal_values_leave_sealed_and_are_gone_once_the_key_is(
    database: Database, stream: Stream, js: JetStreamContext
) -> None:
    table = KeyTable()
    keys = pii.CachedKeys(table, ttl_s=0)
    env = _created(stream.producer, "c-shred1")
    async with database.sessions() as session, session.begin():
        await Outbox(KIT, stream.producer).add(session, env)

    relay = OutboxRelay(database.sessions, KIT, js, sealer=pii.Sealer(keys))
    assert await relay.publish_pending() == 1

    # On the stream: the event, but neither the phone nor the openid in any readable form.
    raw = await js.get_msg(stream.name, seq=1)
    assert PHONE.encode() not in raw.data and OPENID.encode() not in raw.data
    # The outbox row that held them in plain text is deleted once published, not kept.
    async with database.sessions() as session:
        left = await session.scalar(select(func.count()).select_from(KIT.outbox))
    assert left == 0

    # A consumer that reads personal data opens them.
    (opened,) = await _opened_by_a_consumer(database, stream, js, keys, "reader")
    assert [i.value for i in opened.identities] == [PHONE, OPENID]

    # The customer is forgotten: the key is destroyed, and a replay of the same history shows
    # an event about a person with no identities left.
    table.erase("c-shred1")
    (replayed,) = await _opened_by_a_consumer(database, stream, js, keys, "replayer")
    assert replayed.customer_id == "c-shred1" and list(replayed.identities) == []


async def test_an_event_published_after_the_erasure_carries_no_personal_value(
    database: Database, stream: Stream, js: JetStreamContext
) -> None:
    table = KeyTable()
    table.table["c-gone"] = None  # forgotten before its last event left the outbox
    env = _created(stream.producer, "c-gone")
    async with database.sessions() as session, session.begin():
        await Outbox(KIT, stream.producer).add(session, env)
    relay = OutboxRelay(database.sessions, KIT, js, sealer=pii.Sealer(pii.CachedKeys(table)))
    assert await relay.publish_pending() == 1
    raw = await js.get_msg(stream.name, seq=1)
    published = Envelope()
    published.ParseFromString(raw.data)
    msg = CustomerCreated()
    published.payload.Unpack(msg)
    assert msg.customer_id == "c-gone" and list(msg.identities) == []


async def test_events_without_personal_data_pass_untouched_and_cost_no_key_lookup(
    database: Database, stream: Stream, js: JetStreamContext
) -> None:
    table = KeyTable()
    env = new_envelope(
        producer=stream.producer,
        event_type="customer.created",
        tenant_id=TENANT,
        customer_id="c-plain",
        payload=CustomerCreated(customer_id="c-plain"),
    )
    async with database.sessions() as session, session.begin():
        await Outbox(KIT, stream.producer).add(session, env)
    relay = OutboxRelay(database.sessions, KIT, js, sealer=pii.Sealer(pii.CachedKeys(table)))
    assert await relay.publish_pending() == 1
    raw = await js.get_msg(stream.name, seq=1)
    assert raw.data == env.SerializeToString()
    assert table.asked == 0
    async with database.sessions() as session:
        kept = await session.scalar(select(func.count()).select_from(KIT.outbox))
    assert kept == 1  # kept for the outbox retention like any row without personal data


async def test_a_remembered_key_answers_without_a_lookup_and_a_forget_at_once() -> None:
    table = KeyTable()
    keys = pii.CachedKeys(table, ttl_s=60)
    key = pii.new_key()
    table.table["c-new"] = key
    keys.remember(TENANT, {"c-new": key})
    assert await keys.keys(TENANT, ["c-new"]) == {"c-new": key}
    assert table.asked == 0
    keys.remember(TENANT, {"c-new": None})  # forgotten: this process stops using the key now
    assert await keys.keys(TENANT, ["c-new"]) == {"c-new": None}
    assert table.asked == 0
    # Remembered entries expire like fetched ones: with no cache, the source answers every time.
    uncached = pii.CachedKeys(table, ttl_s=0)
    uncached.remember(TENANT, {"c-new": pii.new_key()})
    assert await uncached.keys(TENANT, ["c-new"]) == {"c-new": key}
    assert table.asked == 1


async def test_only_the_plain_values_are_sealed_and_a_sealed_event_passes_as_it_is() -> None:
    """The sealer's one walk finds the values still in plain text and seals those where they
    sit; values sealed already stay as they are, and an event with nothing left to seal passes
    byte for byte (not counted as carrying personal data)."""
    table = KeyTable()
    sealer = pii.Sealer(pii.CachedKeys(table))
    key = pii.new_key()
    table.table["c-mixed"] = key
    env = _created("kit", "c-mixed")
    msg = CustomerCreated()
    env.payload.Unpack(msg)
    already = pii.seal(key, TENANT, "c-mixed", OPENID)
    msg.identities[1].value = already
    env.payload.Pack(msg)

    [mixed, untouched] = await sealer.seal_all(
        [env.SerializeToString(), (await sealer.seal_all([env.SerializeToString()]))[0].data]
    )
    assert mixed.personal and not untouched.personal
    out = Envelope()
    out.ParseFromString(mixed.data)
    sealed = CustomerCreated()
    out.payload.Unpack(sealed)
    phone, openid = (i.value for i in sealed.identities)
    assert openid == already
    assert pii.is_sealed(phone) and pii.unseal(key, TENANT, "c-mixed", phone) == PHONE
    assert (await sealer.seal_all([untouched.data]))[0].data == untouched.data
