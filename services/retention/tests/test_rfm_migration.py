"""Migration 0017 (RFM scored on read) on a database that had stored scores: each tenant that
was scored is ranked from its current inputs (generation 1), its buyers not scored yet stay
unscored, a tenant never scored stays so; the downgrade writes the scores as read back."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from alembic import command
from sqlalchemy import select, text

import closedloop_retention
from closedloop_retention.models import CustomerValueRow, RfmCutOffsRow
from loopkit import db, migrations
from loopkit_dev.testing import PostgresServer

NOW = datetime(2026, 11, 29, 12, tzinfo=UTC)
MIGRATIONS = Path(closedloop_retention.__file__).parent / "migrations"


@pytest.fixture(params=["sqlite", "postgres"])
async def url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "postgres":
        pg: PostgresServer = request.getfixturevalue("postgres")
        return await pg.fresh_database()
    return f"sqlite+aiosqlite:///{tmp_path}/retention.db"


def _row(tenant: str, cid: str, inputs: tuple[int, int, int], score: int) -> dict[str, Any]:
    """A stored row: (orders, revenue, days since the last order) and the scores stored."""
    orders, revenue, days = inputs
    r, f, m = score // 100, score // 10 % 10, score % 10
    return {
        "t": tenant,
        "c": cid * 26,
        "at": NOW - timedelta(days=days),
        "n": orders,
        "rev": revenue,
        "r": r,
        "f": f,
        "m": m,
        "s": score,
        "top": score == 555,
    }


async def test_stored_scores_become_cut_offs_and_back(url: str) -> None:
    await asyncio.to_thread(
        migrations.upgrade, MIGRATIONS, url, service="retention", revision="0016"
    )
    rows = [
        # Tenant "ranked": scored once (the scores stored are stale on purpose: the migration
        # ranks the current inputs), and d bought since (scores 0: unscored until a rescore).
        _row("ranked", "a", (1, 100, 30), 111),
        _row("ranked", "b", (2, 300, 10), 111),
        _row("ranked", "c", (3, 500, 2), 555),
        _row("ranked", "d", (9, 900, 1), 0),
        # Tenant "fresh": never scored.
        _row("fresh", "e", (1, 100, 3), 0),
    ]
    engine = db.create_engine(url)
    async with engine.begin() as conn:
        await conn.execute(
            text(
                "INSERT INTO customer_value (tenant_id, customer_id, last_order_at, order_count,"
                " revenue_minor, rfm_r, rfm_f, rfm_m, rfm_score, top_customer)"
                " VALUES (:t, :c, :at, :n, :rev, :r, :f, :m, :s, :top)"
            ),
            rows,
        )
    await engine.dispose()
    await asyncio.to_thread(migrations.upgrade, MIGRATIONS, url, service="retention")

    engine = db.create_engine(url)
    sessions = db.session_factory(engine)
    async with sessions() as session:
        cuts = (await session.scalars(select(RfmCutOffsRow))).all()
        assert [(c.tenant_id, c.generation, c.buyers) for c in cuts] == [("ranked", 1, 4)]
        got = {
            (v.tenant_id, v.customer_id[0]): (
                v.rfm_r,
                v.rfm_f,
                v.rfm_m,
                v.rfm_score,
                v.top_customer,
            )
            for v in await session.scalars(select(CustomerValueRow))
        }
    await engine.dispose()
    # n = 4 ranked (d's inputs count for the cut-offs): positions 1, 2, 3, 4 (ceil of 0.8 ..
    # 3.2); the top: the revenue at position 1 from the top (900, d's: nobody scored is top).
    assert got == {
        ("ranked", "a"): (1, 1, 1, 111, False),
        ("ranked", "b"): (2, 2, 2, 222, False),
        ("ranked", "c"): (3, 3, 3, 333, False),
        ("ranked", "d"): (0, 0, 0, 0, False),
        ("fresh", "e"): (0, 0, 0, 0, False),
    }

    cfg = migrations.alembic_config(MIGRATIONS, url, service="retention")
    await asyncio.to_thread(command.downgrade, cfg, "0016")
    engine = db.create_engine(url)
    async with engine.connect() as conn:
        back = await conn.execute(
            text(
                "SELECT tenant_id, customer_id, rfm_r, rfm_f, rfm_m, rfm_score, top_customer"
                " FROM customer_value"
            )
        )
        stored = {(r[0], r[1][0]): (r[2], r[3], r[4], r[5], bool(r[6])) for r in back}
    await engine.dispose()
    assert stored == got
