"""The install replay once more, each container as the image runs it: UID/GID 10001, no
capabilities, no new privileges, a read-only root filesystem and a fresh 64 Mi tmpfs on /tmp
(the chart's only writable volume). Needs root (to make the mount namespace) and util-linux's
`unshare` and `setpriv`; run by hand, not in `make test`:

    sudo .venv/bin/python tests/readonly_replay.py

It renders the chart's minimal install, runs every migration Job and every service pod inside
such a sandbox against the machine's PostgreSQL (databases of its own, dropped afterwards) and a
nats-server of its own, waits for each pod's probes, runs the `helm test` pod, sends SIGTERM,
and prints one line per container. Exit status 0 when every one behaved.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

from helm_chart_helpers import RELEASE, minimal, render, resource_name
from pod_replay import Cluster, deployment_container, probe
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

from loopkit.servicelist import listed_services
from loopkit_dev.natsserver import NatsServer, free_port

ROOT = Path(__file__).resolve().parents[1]
PG = os.environ.get("CLOSEDLOOP_TEST_DATABASE_URL", "postgresql+asyncpg://postgres@127.0.0.1:5432/")
UID = 10001

# Run as root inside a private mount namespace; ends by becoming UID 10001 and exec-ing the
# container's process (which keeps the PID, so SIGTERM reaches it as in a pod).
SANDBOX = r"""
set -eu
top=$1; stage=$2; shift 2
# The interpreter lives under /root (0700 on this machine): show only its folder, through a
# world-readable /root, as an image shows its /usr/local.
if [ -n "$top" ]; then
  mount --bind "$top" "$stage"
  mount -t tmpfs -o mode=755,size=1m tmpfs /root
  mkdir -p "$top"
  mount --move "$stage" "$top"
fi
for m in $(awk '{print $2}' /proc/self/mounts | sort -u); do
  case "$m" in /proc|/proc/*|/sys|/sys/*|/dev|/dev/*) continue;; esac
  mount -o remount,bind,ro "$m" 2>/dev/null || true
done
mount -t tmpfs -o mode=1777,size=64m tmpfs /tmp
cd /
exec setpriv --reuid=10001 --regid=10001 --clear-groups --inh-caps=-all --bounding-set=-all \
  --no-new-privs -- "$@"
"""


def _sandbox(stage: Path) -> list[str]:
    home = Path(os.path.realpath(sys.executable)).parents[1]
    top = f"/root/{home.relative_to('/root').parts[0]}" if home.is_relative_to("/root") else ""
    return [
        "unshare",
        "--mount",
        "--propagation",
        "private",
        "--",
        "sh",
        "-c",
        SANDBOX,
        "sandbox",
        top,
        str(stage),
    ]


async def _drop(names: list[str]) -> None:
    engine = create_async_engine(PG.rstrip("/") + "/postgres", isolation_level="AUTOCOMMIT")
    try:
        async with engine.connect() as conn:
            for name in names:
                await conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    finally:
        await engine.dispose()


def _check_sandbox(cluster: Cluster) -> list[str]:
    """What a process in the sandbox sees: its ids, and whether it can write outside /tmp."""
    script = (
        "import os\n"
        "print('uid', os.getuid(), 'gid', os.getgid())\n"
        f"for path in ('/app-probe', {str(ROOT / 'probe-file')!r}, '/tmp/probe'):\n"
        "    try:\n"
        "        open(path, 'w').close(); print('wrote', path)\n"
        "    except OSError as exc:\n"
        "        print('refused', path, exc.strerror)\n"
    )
    done = subprocess.run(
        [*cluster.wrapper, sys.executable, "-c", script],
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    return (done.stdout + done.stderr).strip().splitlines()


def _run_jobs(cluster: Cluster, results: list[str]) -> bool:
    ok = True
    for job in cluster.rendered.of_kind("Job"):
        (container,) = job["spec"]["template"]["spec"]["containers"]
        service = job["metadata"]["labels"]["app.kubernetes.io/component"]
        code = cluster.start(job["metadata"]["name"], container, service).wait(timeout=300)
        results.append(f"{job['metadata']['name']}: exit {code}")
        ok &= code == 0
    return ok


def _start_pods(
    cluster: Cluster,
    services: list[str],
    processes: dict[str, subprocess.Popen[bytes]],
    results: list[str],
) -> bool:
    ok = True
    for service in services:
        container = deployment_container(cluster.rendered, resource_name(service))
        processes[service] = cluster.start(service, container, service)
    for service in services:
        container = deployment_container(cluster.rendered, resource_name(service))
        deadline = time.monotonic() + 180
        reason: str | None = "not probed"
        while time.monotonic() < deadline:
            if processes[service].poll() is not None:
                reason = f"exited {processes[service].returncode}"
                break
            reason = probe(container, "startupProbe") or probe(container, "readinessProbe")
            if reason is None:
                break
            time.sleep(0.2)
        results.append(f"{service}: {'Ready' if reason is None else reason}")
        ok &= reason is None
    return ok


def _terminate(processes: dict[str, subprocess.Popen[bytes]], results: list[str]) -> bool:
    ok = True
    for proc in processes.values():
        if proc.poll() is None:
            proc.terminate()
    for service, proc in processes.items():
        try:
            code: int | None = proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            proc.kill()
            code = None
        results.append(f"{service}: SIGTERM -> exit {code}")
        ok &= code == 0
    return ok


def main() -> int:
    if os.geteuid() != 0 or not shutil.which("unshare") or not shutil.which("setpriv"):
        print("needs root, unshare and setpriv", file=sys.stderr)
        return 2
    services = [s.name for s in listed_services(ROOT / "services.toml")]
    work = Path(tempfile.mkdtemp(prefix="closedloop-ro-", dir="/var/tmp"))
    work.chmod(0o755)
    stage = work / "stage"
    stage.mkdir()
    prefix = f"closedloop_ro_{uuid.uuid4().hex[:8]}"
    nats = NatsServer(work / "nats", port=free_port(), sync_always=False)
    nats.start()
    ports = {n: {"grpcPort": free_port(), "httpPort": free_port()} for n in services}
    # The key file's Secret is a volume the replay does not mount: callers are allowed anonymous.
    anonymous = {
        "apiKeys": {"existingSecret": ""},
        "apiToken": {"existingSecret": ""},
        "allowAnonymousCallers": True,
    }
    rendered = render(minimal({"externalNats": {"url": nats.url}, "services": ports, **anonymous}))
    cluster = Cluster(
        rendered,
        secrets={"closedloop-database": {"url": f"{PG.rstrip('/')}/{prefix}_{{service}}"}},
        dns={f"{RELEASE}-closedloop-{s}": "127.0.0.1" for s in services},
        workdir=work,
        wrapper=_sandbox(stage),
    )
    (work / "image").mkdir()
    for folder in (work / "image", work / "logs", work / "app"):
        folder.mkdir(exist_ok=True)
        folder.chmod(0o755)
    results: list[str] = [f"sandbox: {line}" for line in _check_sandbox(cluster)]
    ok = any(line.startswith("sandbox: uid 10001 gid 10001") for line in results) and not any(
        "wrote /app-probe" in line or "wrote /work" in line for line in results
    )
    processes: dict[str, subprocess.Popen[bytes]] = {}
    try:
        ok &= _run_jobs(cluster, results)
        ok &= _start_pods(cluster, services, processes, results)
        (pod,) = rendered.of_kind("Pod")
        code = cluster.start("helm-test", pod["spec"]["containers"][0], services[0]).wait(120)
        results.append(f"helm test: exit {code}")
        ok &= code == 0
    finally:
        ok &= _terminate(processes, results)
        nats.stop()
        asyncio.run(_drop([f"{prefix}_{s}" for s in services]))
    for line in results:
        print(line)
    for name in [*processes, "helm-test"]:
        errors = [
            line
            for line in cluster.log_tail(name, 400).splitlines()
            if "Read-only file system" in line or "Permission denied" in line
        ]
        for line in errors[:3]:
            print(f"{name} log: {line}")
            ok = False
    if ok:
        shutil.rmtree(work, ignore_errors=True)
    else:
        print(f"logs kept in {work / 'logs'}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
