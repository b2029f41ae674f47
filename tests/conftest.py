"""Fixtures shared by the platform tests."""

from __future__ import annotations

import contextlib
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from test_postgres_restart import PG_BIN, ThrowawayCluster


@pytest.fixture
def unstarted_cluster(tmp_path: Path) -> Iterator[ThrowawayCluster]:
    """A PostgreSQL server of the test's own, initialised but not started: the test reshapes it
    or starts it late (the machine's shared server must never be touched)."""
    if not (PG_BIN / "initdb").exists() or shutil.which("runuser") is None:
        pytest.fail(f"PostgreSQL server binaries are needed under {PG_BIN}")
    pg = ThrowawayCluster(Path("/tmp") / f"closedloop-pg-{tmp_path.name}")
    pg.init()
    yield pg
    with contextlib.suppress(subprocess.CalledProcessError):  # never started, or stopped
        pg.stop("immediate")
    shutil.rmtree(pg.folder, ignore_errors=True)
