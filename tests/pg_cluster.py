"""A PostgreSQL cluster of a test's own, to stop and start at will (never the machine's)."""

from __future__ import annotations

import contextlib
import shutil
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from loopkit_dev.natsserver import free_port

PG_BIN = Path("/usr/lib/postgresql/15/bin")


class ThrowawayCluster:
    """A PostgreSQL cluster of this test's own (initdb + pg_ctl as user postgres)."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.data = folder / "data"
        self.port = free_port()

    def _as_postgres(self, *args: str) -> None:
        subprocess.run(
            ["runuser", "-u", "postgres", "--", *args], check=True, capture_output=True, timeout=60
        )

    def init(self) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        shutil.chown(self.folder, "postgres", "postgres")
        self._as_postgres(
            str(PG_BIN / "initdb"),
            "-D",
            str(self.data),
            "-U",
            "postgres",
            "--auth=trust",
            "--no-sync",
        )

    def start(self) -> None:
        self._as_postgres(
            str(PG_BIN / "pg_ctl"),
            "-D",
            str(self.data),
            "-w",
            "-l",
            str(self.folder / "log"),
            "-o",
            f"-p {self.port} -k {self.folder} -c listen_addresses=127.0.0.1",
            "start",
        )

    def stop(self, mode: str = "fast") -> None:
        self._as_postgres(str(PG_BIN / "pg_ctl"), "-D", str(self.data), "-w", "-m", mode, "stop")

    def database(self, name: str) -> str:
        return f"postgresql+asyncpg://postgres@127.0.0.1:{self.port}/{name}"

    @property
    def url(self) -> str:
        return self.database("closedloop_identity")


@contextlib.contextmanager
def throwaway_cluster(name: str) -> Iterator[ThrowawayCluster]:
    if not (PG_BIN / "initdb").exists() or shutil.which("runuser") is None:
        pytest.fail(f"PostgreSQL server binaries are needed under {PG_BIN}")
    # Unique per run (two sessions may run the same test at once), and short: the server's unix
    # socket lives in this folder and socket paths are limited to about 100 bytes.
    pg = ThrowawayCluster(Path("/tmp") / f"closedloop-pg-{uuid.uuid4().hex[:8]}-{name[-24:]}")
    pg.init()
    pg.start()
    try:
        yield pg
    finally:
        with contextlib.suppress(subprocess.CalledProcessError):  # already stopped
            pg.stop("immediate")
        shutil.rmtree(pg.folder, ignore_errors=True)


@contextlib.contextmanager
def unstarted_throwaway_cluster(name: str) -> Iterator[ThrowawayCluster]:
    """Initialised but not started: for a test that reshapes it first or starts it late (a
    database server coming up after its clients)."""
    if not (PG_BIN / "initdb").exists() or shutil.which("runuser") is None:
        pytest.fail(f"PostgreSQL server binaries are needed under {PG_BIN}")
    pg = ThrowawayCluster(Path("/tmp") / f"closedloop-pg-{name}")
    pg.init()
    try:
        yield pg
    finally:
        with contextlib.suppress(subprocess.CalledProcessError):  # never started, or stopped
            pg.stop("immediate")
        shutil.rmtree(pg.folder, ignore_errors=True)
