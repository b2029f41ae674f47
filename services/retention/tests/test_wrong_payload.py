"""An event whose payload is of another type than its name promises can never be applied: it is
dead-lettered on its first delivery (not retried five times), and the events after it flow."""

from __future__ import annotations

from nats.aio.client import Client

from closedloop.events.v1 import conversion_events_pb2 as conv
from closedloop.events.v1 import identity_events_pb2 as idn
from loopkit.deadletters import DeadLetter, list_dead_letters
from loopkit_dev.testing import RunningService, eventually
from retention_helpers import Stub, activity, customer, lead, publish, tenant


async def _letter(nc: Client, consumer: str, event_id: str) -> DeadLetter | None:
    letters = await list_dead_letters(nc.jetstream(), consumer=consumer)
    return next((x for x in letters if x.event_id == event_id), None)


async def test_a_touch_with_an_order_payload_is_dead_lettered_at_once(
    retention: RunningService, stub: Stub, nats_client: Client
) -> None:
    t, cid = tenant(), customer()
    wrong = await publish(
        nats_client, "acquisition", "touch.recorded", t, cid, conv.OrderPaid(order_id="o-1")
    )

    async def dead_lettered() -> DeadLetter | None:
        return await _letter(nats_client, "retention-acquisition", wrong.id)

    await eventually(dead_lettered)
    letter = await dead_lettered()
    assert letter is not None
    assert letter.delivered == "1"
    assert letter.error.startswith("WrongPayload: payload: event touch.recorded does not carry")
    # Nothing was applied for it, and the consumer goes on with the next event.
    assert await activity(stub, t, cid) is None
    await lead(nats_client, t, cid)

    async def seen() -> object:
        return await activity(stub, t, cid)

    await eventually(seen)


async def test_a_merge_with_another_payload_is_dead_lettered_at_once(
    retention: RunningService, nats_client: Client
) -> None:
    t, cid = tenant(), customer()
    wrong = await publish(
        nats_client, "identity", "customer.merged", t, cid, idn.CustomerCreated(customer_id=cid)
    )

    async def dead_lettered() -> DeadLetter | None:
        return await _letter(nats_client, "retention-identity", wrong.id)

    await eventually(dead_lettered)
    letter = await dead_lettered()
    assert letter is not None
    assert letter.delivered == "1"
    assert letter.error.startswith("WrongPayload")
