"""An event consumer in a process of its own, which the tests kill.

    consumer_proc.py DATABASE_URL NATS_URL STREAM SUBJECT SERVICE --crash-after K
        [--ack-wait S] [--batch-size N]

Consumes with the kit's EventConsumer and the test handler (one `applied` row per application)
and dies (exit 137, no cleanup) right after the transaction of the batch holding its K-th message
committed and before any message of that batch is acked.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os

from kit_testbed import EVENT_TYPE, KIT, record_applied
from loopkit import db, natsio
from loopkit.consumer import EventConsumer, Subscription

CRASH_EXIT = 137


class CrashingConsumer(EventConsumer):
    crash_after = 0
    committed = 0

    async def _apply_batch(self, deliveries, *, careful):  # type: ignore[no-untyped-def]
        await super()._apply_batch(deliveries, careful=careful)  # the batch has committed here
        self.committed += len(deliveries)
        if self.committed >= self.crash_after:
            ids = ", ".join(d.env.id for d in deliveries)
            print(f"crashing after committing {ids}, before their acks", flush=True)
            os._exit(CRASH_EXIT)


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("database_url")
    parser.add_argument("nats_url")
    parser.add_argument("stream")
    parser.add_argument("subject")
    parser.add_argument("service")
    parser.add_argument("--crash-after", type=int, required=True)
    parser.add_argument("--ack-wait", type=float, default=1.0)
    parser.add_argument("--batch-size", type=int, default=100)
    args = parser.parse_args()

    engine = db.create_engine(args.database_url)
    nc = await natsio.connect(args.nats_url, name="consumer-proc")
    consumer = CrashingConsumer(
        args.service,
        Subscription(
            name="applier",
            stream=args.stream,
            subjects=[args.subject],
            handlers={EVENT_TYPE: record_applied},
        ),
        db.session_factory(engine),
        KIT,
        nc.jetstream(),
        ack_wait_s=args.ack_wait,
        batch_size=args.batch_size,
    )
    consumer.crash_after = args.crash_after
    await consumer.start()
    await consumer.run(asyncio.Event())  # until the crash (or the test kills it)


if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO)
    asyncio.run(main())
