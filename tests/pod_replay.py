"""Running the chart's rendered pods as local processes, the way the kubelet would run them.

A container here is its image's ENTRYPOINT (read from deploy/docker/Dockerfile) plus the rendered
`command`, with exactly the environment Kubernetes would give it: the image's ENV, `envFrom`
ConfigMaps and Secrets, then `env` with `$(VAR)` expansion and `secretKeyRef`s. Nothing of the
test process's environment leaks in. Two things stand in for the cluster and the image:

* the image's `/opt/venv` is this checkout's `.venv` (same packages, from the same uv.lock), and
  the one-service services.toml the image build writes is written the same way into a folder;
* cluster DNS is a map from `<Service>:<port>` to the local address serving it (a Service in
  front of its pod), applied to every environment value;
* a Secret volume (the API key file) is a folder holding the Secret's items, and its mount path
  in every environment value and argument is that folder. A pod mounting a Secret the install
  did not create fails, as it would stay ContainerCreating.

Probes are run as the kubelet runs them: gRPC health (`grpc:`) or `httpGet` on the container's
named port, against both 127.0.0.1 and [::1] (an IPv6-only cluster probes the pod's IPv6
address).
"""

from __future__ import annotations

import re
import signal
import socket
import subprocess
import sys
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import grpc
import httpx
from grpc_health.v1 import health_pb2, health_pb2_grpc
from helm_chart_helpers import DOCKERFILE, Rendered

VENV_BIN = Path(sys.executable).parent
_VAR_REF = re.compile(r"\$\(([A-Za-z_][A-Za-z0-9_]*)\)")


def image_env(service: str) -> dict[str, str]:
    """The runtime stage's ENV of deploy/docker/Dockerfile for one service (build arg SERVICE)."""
    text = DOCKERFILE.read_text()
    runtime = text[text.rindex("\nFROM ") :]
    env: dict[str, str] = {}
    for block in re.findall(r"^ENV ((?:.*\\\n)*.*)$", runtime, re.M):
        for pair in re.findall(r"(\w+)=(\S+)", block.replace("\\\n", " ")):
            name, value = pair
            value = value.replace("${SERVICE}", service).replace("$PATH", "/usr/bin:/bin")
            env[name] = value
    return env


def image_entrypoint() -> list[str]:
    match = re.search(r"^ENTRYPOINT (\[.*\])$", DOCKERFILE.read_text(), re.M)
    assert match, "the Dockerfile has no exec-form ENTRYPOINT"
    import json

    entrypoint: list[str] = json.loads(match.group(1))
    return entrypoint


def write_image_services_file(folder: Path, service: str) -> Path:
    """What the image build writes to /opt/venv/services.toml (the Dockerfile's printf)."""
    path = folder / service / "services.toml"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(f'[services.{service}]\nmodule = "closedloop_{service}"\n')
    return path


@dataclass
class Cluster:
    """What the rendered pods need from a cluster: Secrets and Service addresses."""

    rendered: Rendered
    secrets: dict[str, dict[str, str]]
    # "<service host>:<port>" -> "127.0.0.1:<port>"; a bare host maps every port.
    dns: dict[str, str]
    workdir: Path
    logs: list[Path] = field(default_factory=list)
    # Put before every container's process (a sandbox: tests/readonly_replay.py).
    wrapper: list[str] = field(default_factory=list)
    # A Secret volume's mount path -> the local folder holding its items.
    mounts: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for obj in self.rendered.objects:
            if obj["kind"] in ("Deployment", "Job"):
                pod = obj["spec"]["template"]["spec"]
            elif obj["kind"] == "Pod":
                pod = obj["spec"]
            else:
                continue
            secrets = {v["name"]: v["secret"] for v in pod.get("volumes", []) if "secret" in v}
            containers = [*pod.get("initContainers", []), *pod["containers"]]
            for mount in (m for c in containers for m in c.get("volumeMounts", [])):
                if mount["name"] in secrets:
                    self.mounts[mount["mountPath"]] = self._secret_folder(secrets[mount["name"]])

    def _secret_folder(self, volume: Mapping[str, Any]) -> str:
        name = volume["secretName"]
        assert name in self.secrets, f"a pod mounts Secret {name}, which the install lacks"
        folder = self.workdir / "secrets" / name
        folder.mkdir(parents=True, exist_ok=True)
        data = self.secrets[name]
        for item in volume.get("items") or [{"key": k, "path": k} for k in data]:
            (folder / item["path"]).write_text(data[item["key"]])
        return str(folder)

    def _resolve(self, value: str) -> str:
        names = {**self.dns, **self.mounts}
        for name, address in sorted(names.items(), key=lambda kv: -len(kv[0])):
            value = value.replace(name, address)
        return value

    def container_env(self, container: Mapping[str, Any], service: str) -> dict[str, str]:
        env = image_env(service)
        for source in container.get("envFrom", []):
            if "configMapRef" in source:
                data = self.rendered.named("ConfigMap", source["configMapRef"]["name"])["data"]
            else:
                data = self.secrets[source["secretRef"]["name"]]
            env.update({k: str(v) for k, v in data.items()})
        for item in container.get("env", []):
            if "value" in item:
                env[item["name"]] = _VAR_REF.sub(
                    lambda m: env.get(m.group(1), m.group(0)), str(item["value"])
                )
            else:
                ref = item["valueFrom"]["secretKeyRef"]
                env[item["name"]] = self.secrets[ref["name"]][ref["key"]]
        env = {k: self._resolve(v) for k, v in env.items()}
        # The image's /opt/venv is this checkout's virtualenv.
        env["PATH"] = env["PATH"].replace("/opt/venv/bin", str(VENV_BIN))
        services_file = write_image_services_file(self.workdir / "image", service)
        env["CLOSEDLOOP_SERVICES_FILE"] = str(services_file)
        return env

    def argv(self, container: Mapping[str, Any]) -> list[str]:
        """The process the container runs: its command, else the image's entrypoint (Service
        names in arguments resolved as cluster DNS would at connect time)."""
        if "command" in container:
            argv = [*container["command"], *container.get("args", [])]
        else:
            argv = [*image_entrypoint(), *container.get("args", [])]
        return [*self.wrapper, *(self._resolve(arg) for arg in argv)]

    def start(
        self, name: str, container: Mapping[str, Any], service: str
    ) -> subprocess.Popen[bytes]:
        log = self.workdir / "logs" / f"{name}.log"
        log.parent.mkdir(parents=True, exist_ok=True)
        self.logs.append(log)
        cwd = self.workdir / "app" / name  # WORKDIR /app
        cwd.mkdir(parents=True, exist_ok=True)
        with log.open("ab") as out:
            return subprocess.Popen(
                self.argv(container),
                env=self.container_env(container, service),
                cwd=cwd,
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
            )

    def log_tail(self, name: str, lines: int = 30) -> str:
        path = self.workdir / "logs" / f"{name}.log"
        if not path.exists():
            return "(no log)"
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])


def deployment_container(rendered: Rendered, deployment: str) -> dict[str, Any]:
    (container,) = rendered.named("Deployment", deployment)["spec"]["template"]["spec"][
        "containers"
    ]
    return container  # type: ignore[no-any-return]


def _port(container: Mapping[str, Any], port: int | str) -> int:
    if isinstance(port, int):
        return port
    return next(int(p["containerPort"]) for p in container["ports"] if p["name"] == port)


def _ipv6_loopback() -> bool:
    try:
        with socket.socket(socket.AF_INET6) as s:
            s.bind(("::1", 0))
        return True
    except OSError:
        return False


def _grpc_health(target: str, spec: Mapping[str, Any]) -> str | None:
    with grpc.insecure_channel(target, options=[("grpc.enable_http_proxy", 0)]) as channel:
        try:
            reply = health_pb2_grpc.HealthStub(channel).Check(
                health_pb2.HealthCheckRequest(service=spec["grpc"].get("service", "")),
                timeout=spec.get("timeoutSeconds", 1),
            )
        except grpc.RpcError as exc:
            return f"gRPC {target}: {exc.code().name}"
    if reply.status != health_pb2.HealthCheckResponse.SERVING:
        return f"gRPC {target}: {health_pb2.HealthCheckResponse.ServingStatus.Name(reply.status)}"
    return None


def probe(container: Mapping[str, Any], kind: str) -> str | None:
    """Run the container's `kind` probe (startupProbe, readinessProbe…): None when it passes,
    else why not."""
    spec = container[kind]
    hosts = ["127.0.0.1"] + (["[::1]"] if _ipv6_loopback() else [])
    if "grpc" in spec:
        for host in hosts:
            reason = _grpc_health(f"{host}:{_port(container, spec['grpc']['port'])}", spec)
            if reason is not None:
                return reason
        return None
    get = spec["httpGet"]
    port = _port(container, get["port"])
    for host in hosts:
        url = f"http://{host}:{port}{get['path']}"
        try:
            reply = httpx.get(url, timeout=spec.get("timeoutSeconds", 1), trust_env=False)
        except httpx.HTTPError as exc:
            return f"{url}: {type(exc).__name__}"
        if not 200 <= reply.status_code < 400:
            return f"{url}: {reply.status_code} {reply.text[:200]}"
    return None


@contextmanager
def stopping(processes: dict[str, subprocess.Popen[bytes]]) -> Iterator[dict[str, int | None]]:
    """SIGTERM every process still running on exit (what the kubelet sends), then collect exit
    codes into the yielded dict (None: had to be killed)."""
    codes: dict[str, int | None] = {}
    try:
        yield codes
    finally:
        for proc in processes.values():
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        for name, proc in processes.items():
            try:
                codes[name] = proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
                codes[name] = None
