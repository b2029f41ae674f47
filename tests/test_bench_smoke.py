"""Every benchmark still runs: each `bench/*.py` with `--smoke` (its smallest meaningful size),
against the test PostgreSQL, exits 0 and ends with ratio lines that parse. No speed is asserted
(speed lives in the benches' own figures); this catches a bench broken by a change elsewhere,
as `bench/assignment.py` once was by services refusing anonymous callers."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from loopkit_dev.testing import PostgresServer

REPO = Path(__file__).resolve().parents[1]
BENCH = REPO / "bench"
# The shared helpers, not benchmarks.
HELPERS = {"_common.py", "_statements.py"}
# Probes measure one change against a database they are given and have no goal (no ratio line):
# they are run with --help, so a changed import or argument still fails here.
PROBES = {"read_path.py", "segment_ageing.py"}
BENCHES = sorted(p.name for p in BENCH.glob("*.py") if p.name not in HELPERS | PROBES)
# `ratio <name> <value> goal <value>`, optionally followed by a note such as "(at c=16)".
RATIO = re.compile(r"^ratio (?P<name>[a-z0-9_]+) (?P<value>\S+) goal (?P<goal>\S+)(?: .*)?$")


def test_every_bench_is_smoke_tested() -> None:
    """A new bench is picked up by the glob below; this keeps the list from going empty."""
    assert "relay.py" in BENCHES
    assert "assignment.py" in BENCHES


@pytest.mark.parametrize("probe", sorted(PROBES))
def test_a_probe_starts_and_reads_its_arguments(probe: str) -> None:
    done = subprocess.run(
        [sys.executable, str(BENCH / probe), "--help"],
        cwd=REPO,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-4000:]
    assert "usage:" in done.stdout


@pytest.mark.postgres
@pytest.mark.parametrize("bench", BENCHES)
def test_bench_smoke_run_exits_0_with_parsable_ratio_lines(
    bench: str, postgres: PostgresServer, tmp_path: Path
) -> None:
    env = {
        **os.environ,
        "CLOSEDLOOP_BENCH_DATABASE_URL": postgres.base_url,
        "PYTHONUNBUFFERED": "1",
        # The benches make their own temporary folders (nats-server stores, state dirs).
        "TMPDIR": str(tmp_path),
    }
    done = subprocess.run(
        [sys.executable, str(BENCH / bench), "--smoke"],
        cwd=REPO,
        env=env,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,  # the output is shown below when it fails
    )
    output = f"--- stdout\n{done.stdout[-4000:]}\n--- stderr\n{done.stderr[-4000:]}"
    assert done.returncode == 0, output
    lines = [line for line in done.stdout.splitlines() if line.startswith("ratio ")]
    assert lines, f"{bench} printed no ratio line\n{output}"
    for line in lines:
        parsed = RATIO.match(line)
        assert parsed is not None, f"unparsable ratio line {line!r}\n{output}"
        float(parsed["value"])
        float(parsed["goal"])
