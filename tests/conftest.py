"""Fixtures shared by the platform tests."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from pg_cluster import ThrowawayCluster, unstarted_throwaway_cluster


@pytest.fixture
def unstarted_cluster(tmp_path: Path) -> Iterator[ThrowawayCluster]:
    """A PostgreSQL server of the test's own, initialised but not started (the machine's shared
    server must never be touched)."""
    with unstarted_throwaway_cluster(tmp_path.name) as pg:
        yield pg
