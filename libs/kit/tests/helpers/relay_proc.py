"""An outbox relay in a process of its own, which the tests kill.

    relay_proc.py DATABASE_URL NATS_URL [--batch-size N] [--crash-after-publish]

Publishes the outbox until it is empty, prints `published <n>` and exits 0. With
`--crash-after-publish` the process dies (exit 137, no cleanup) in its first batch right after
JetStream acknowledged every message and before the rows are marked sent: the window in which
a relay that crashes leaves events both on the stream and unsent in the outbox.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os

from sqlalchemy.ext.asyncio import AsyncConnection

from kit_testbed import KIT
from loopkit import db, natsio
from loopkit.outbox import OutboxRelay

CRASH_EXIT = 137


class CrashingRelay(OutboxRelay):
    async def _mark_sent(self, conn: AsyncConnection, ids: list[str], personal: set[str]) -> None:
        print(f"crashing after publishing {len(ids)} events", flush=True)
        os._exit(CRASH_EXIT)


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("database_url")
    parser.add_argument("nats_url")
    parser.add_argument("--batch-size", type=int, default=200)
    parser.add_argument("--crash-after-publish", action="store_true")
    args = parser.parse_args()

    engine = db.create_engine(args.database_url)
    # Waits, retrying, while NATS is down: a relay may start before its server.
    nc = await natsio.connect(args.nats_url, name="relay-proc")
    print("connected", flush=True)
    relay_cls = CrashingRelay if args.crash_after_publish else OutboxRelay
    relay = relay_cls(
        db.session_factory(engine),
        KIT,
        nc.jetstream(),
        batch_size=args.batch_size,
        publish_timeout_s=2.0,
    )
    published = 0
    while n := await relay.publish_pending():
        published += n
    print(f"published {published}", flush=True)
    await nc.close()
    await engine.dispose()


if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO)
    asyncio.run(main())
