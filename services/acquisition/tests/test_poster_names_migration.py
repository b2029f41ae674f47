"""Migration 0008 renames the fission poster channels named after their customer (the name
outlived a forget) after their participation instead; other channels keep their names."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine
from sqlalchemy.pool import NullPool

from closedloop_acquisition.main import DEFINITION
from loopkit.migrations import upgrade
from loopkit_dev.testing import PostgresServer

CHANNEL = (
    "INSERT INTO channels (id, tenant_id, campaign_id, name, kind, scene, app_id, url, parameters,"
    " owner_team, welcome_message, expired_reply, tags, schedule, daily_cap_per_rep,"
    " cost_currency, cost_minor, region, created_at) VALUES (:id, 't1', 'camp', :name,"
    " 'qr_permanent', :scene, 'wx1', '', '{}', '', '', '', '[]', '{}', 0, '', 0, '',"
    " '2026-11-30 00:00:00+00')"
)


@pytest.fixture(params=["sqlite", "postgres"])
def database(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite+aiosqlite:///{tmp_path}/acquisition.db"
    pg: PostgresServer = request.getfixturevalue("postgres")
    return asyncio.run(pg.fresh_database("closedloop_acq_0008"))


def _run(url: str, *statements: tuple[str, dict[str, str]]) -> list[tuple[str, str]]:
    async def run() -> list[tuple[str, str]]:
        engine = create_async_engine(url, poolclass=NullPool)
        try:
            async with engine.begin() as conn:
                for sql, params in statements:
                    await conn.execute(text(sql), params)
                found = await conn.execute(text("SELECT id, name FROM channels ORDER BY id"))
                return [(r[0], r[1]) for r in found]
        finally:
            await engine.dispose()

    return asyncio.run(run())


def test_poster_channels_lose_their_customer_id(database: str) -> None:
    where = DEFINITION.migrations_dir
    assert where is not None
    upgrade(where, database, service="acquisition", revision="0007")
    participation = "01JPARTICIPATION0000000000"
    _run(
        database,
        (
            CHANNEL,
            {
                "id": "c1",
                "name": "fission poster of 01JCUSTOMER",
                "scene": f"fx-{participation.lower()}",
            },
        ),
        (CHANNEL, {"id": "c2", "name": "fission poster of the month", "scene": "summer"}),
        (CHANNEL, {"id": "c3", "name": "Store door", "scene": "fx-door"}),
    )
    upgrade(where, database, service="acquisition")
    assert _run(database) == [
        ("c1", f"fission poster {participation}"),
        ("c2", "fission poster of the month"),
        ("c3", "Store door"),
    ]
