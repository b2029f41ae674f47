"""Fixtures shared by the platform tests."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from pg_cluster import ThrowawayCluster, unstarted_throwaway_cluster

from loopkit_dev.natsserver import NatsServer
from loopkit_dev.testing import own_nats_server


@pytest.fixture(scope="module")
def nats_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[NatsServer]:
    """A nats-server per module: a test that reads a whole stream (dead letters, say) sees only
    its own module's messages, never the kit tests' deliberately undecodable ones."""
    with own_nats_server(tmp_path_factory) as server:
        yield server


@pytest.fixture
def unstarted_cluster(tmp_path: Path) -> Iterator[ThrowawayCluster]:
    """A PostgreSQL server of the test's own, initialised but not started (the machine's shared
    server must never be touched)."""
    with unstarted_throwaway_cluster(tmp_path.name) as pg:
        yield pg
