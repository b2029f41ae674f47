"""`bench/identity_resolve.py --workers N` says where the whole machine's CPU went in a cell. A
process that exits during the cell is gone from the second look at /proc, so its CPU is counted
from its parent's children's time (`cutime` + `cstime`): the PostgreSQL backends of closed
connections once made up a quarter of the machine that no process accounted for."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

BENCH = Path(__file__).resolve().parents[1] / "bench"
sys.path.insert(0, str(BENCH))

import identity_resolve as bench  # noqa: E402  (bench/ is no package)

BURN = "import time\nend = time.process_time() + 0.4\nwhile time.process_time() < end: pass"


def test_the_cpu_of_a_child_that_exited_during_the_cell_is_counted_under_its_parent() -> None:
    before = bench._all_processes()
    subprocess.run([sys.executable, "-c", BURN], check=True)  # started, burned, exited, reaped
    after = bench._all_processes()
    shares = dict(bench.machine_shares(before, after, {"bench client": {os.getpid()}}, 1.0))
    assert shares.get("exited children of bench client", 0.0) >= 0.3, shares


def test_a_child_alive_before_the_cell_counts_only_what_it_spent_during_it() -> None:
    child = subprocess.Popen(
        [sys.executable, "-c", f"{BURN}\nimport sys\nsys.stdin.read()\n{BURN}"],
        stdin=subprocess.PIPE,
    )
    try:
        # Its first burn happens before the cell.
        while bench._all_processes().get(_key(child.pid), None) is None or (
            bench._all_processes()[_key(child.pid)].seconds < 0.35
        ):
            pass
        before = bench._all_processes()
        assert child.stdin is not None
        child.stdin.close()  # the second burn, then it exits
        child.wait(30)
        after = bench._all_processes()
    finally:
        child.kill()
    spent = dict(bench.machine_shares(before, after, {"bench client": {os.getpid()}}, 1.0))
    exited = spent.get("exited children of bench client", 0.0)
    assert 0.3 <= exited < 0.7, spent  # the second burn only, not the first one again


def _key(pid: int) -> tuple[int, str]:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (pid, fields[19])
