"""A Get call's unit of work alone: one primary-key SELECT in `UnitOfWork.run` (how identity's,
conversion's and retention's Get/List calls ran before stop 25) or `UnitOfWork.read` (after),
with `--callers` concurrent callers, reporting this process's CPU per unit.

    python bench/read_path.py --backend postgres --mode read --units 4000
    python bench/read_path.py --backend sqlite --mode read --mixed   # a write unit after each read
    python bench/read_path.py --backend postgres --mode both         # run/read blocks alternated
    python bench/read_path.py --backend postgres --mode read --callers 1 --calls

Run it under two trees for an A/B of the kit itself (PYTHONPATH=<tree>/libs/kit/src). `--mixed`
alternates a read and a one-row UPDATE per caller, so on SQLite a pooled connection turns from
reading to writing and back (the `PRAGMA query_only` switch on this branch).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import tempfile
import time

from _common import create_database, database_base_url, drop_database, new_database_name
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from loopkit import db
from loopkit.uow import UnitOfWork

ROWS = 1000


async def _get(session: AsyncSession, key: int) -> str:
    found = await session.execute(text("SELECT name FROM items WHERE id = :id"), {"id": key})
    return str(found.scalar_one())


async def _touch(session: AsyncSession, key: int) -> None:
    await session.execute(text("UPDATE items SET hits = hits + 1 WHERE id = :id"), {"id": key})


def _args() -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    parser.add_argument("--backend", choices=["postgres", "sqlite"], default="postgres")
    parser.add_argument(
        "--mode",
        choices=["run", "read", "both"],
        default="read",
        help="both: blocks of `run` and `read` alternated in this one process",
    )
    parser.add_argument("--blocks", type=int, default=10, help="with --mode both")
    parser.add_argument("--units", type=int, default=4000)
    parser.add_argument("--callers", type=int, default=8)
    parser.add_argument("--mixed", action="store_true")
    parser.add_argument(
        "--calls", action="store_true", help="count Python calls per unit (this thread)"
    )
    return parser.parse_args()


async def _fill(engine: AsyncEngine) -> None:
    async with engine.begin() as conn:
        await conn.execute(
            text("CREATE TABLE items (id integer PRIMARY KEY, name text, hits integer)")
        )
        for i in range(ROWS):
            await conn.execute(
                text("INSERT INTO items VALUES (:i, :n, 0)"), {"i": i, "n": f"item-{i}"}
            )


async def _pass(uow: UnitOfWork, mode: str, args: argparse.Namespace) -> None:
    """Every caller's units once: `--units` in all."""
    unit = uow.read if mode == "read" else uow.run
    per_caller = args.units // args.callers

    async def caller(c: int) -> None:
        for n in range(per_caller):
            key = (c * per_caller + n) % ROWS

            async def get(s: AsyncSession, k: int = key) -> str:
                return await _get(s, k)

            async def touch(s: AsyncSession, k: int = key) -> None:
                await _touch(s, k)

            await unit(get)
            if args.mixed:
                await uow.run(touch)

    await asyncio.gather(*(caller(c) for c in range(args.callers)))


async def _measure(uow: UnitOfWork, args: argparse.Namespace) -> str:
    units = args.units // args.callers * args.callers
    load = f"load={os.getloadavg()[0]:.1f}"
    if args.mode == "both":
        spent = {"run": 0.0, "read": 0.0}
        for block in range(args.blocks * 2):
            mode = ("run", "read")[block % 2]
            cpu = time.process_time()
            await _pass(uow, mode, args)
            spent[mode] += time.process_time() - cpu
        each = units * args.blocks
        cells = " ".join(f"{m}_cpu_us_per_unit={t / each * 1e6:.1f}" for m, t in spent.items())
        return f"{args.backend} alternated units_each={each} {cells} {load}"
    calls = [0]

    def count(_frame: object, event: str, _arg: object) -> None:
        if event == "call":
            calls[0] += 1

    if args.calls:
        sys.setprofile(count)
    cpu, wall = time.process_time(), time.perf_counter()
    await _pass(uow, args.mode, args)
    cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
    sys.setprofile(None)
    counted = f"python_calls_per_unit={calls[0] / units:.1f} " if args.calls else ""
    return (
        f"{args.backend} {args.mode}{' mixed' if args.mixed else ''} units={units} {counted}"
        f"cpu_us_per_unit={cpu / units * 1e6:.1f} wall_s={wall:.2f} {load}"
    )


async def main() -> None:
    args = _args()
    if args.backend == "postgres":
        base, name = database_base_url(), new_database_name("bench_read_path")
        url = await create_database(base, name)
    else:
        url = f"sqlite+aiosqlite:///{tempfile.mkdtemp(prefix='read-path-')}/bench.db"
    engine = db.create_engine(url, pool_size=args.callers, overflow=False)
    try:
        await _fill(engine)
        uow = UnitOfWork(db.session_factory(engine))
        await _pass(uow, "run" if args.mode == "both" else args.mode, args)  # warm-up
        print(await _measure(uow, args))
    finally:
        await engine.dispose()
        if args.backend == "postgres":
            await drop_database(base, name)


if __name__ == "__main__":
    asyncio.run(main())
