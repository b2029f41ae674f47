"""`helm install --wait` replayed without a cluster, for both database modes: every service
started as its pod would be, and seen Ready.

The chart is rendered with its default values plus only what an install must give (the public
base URL, the NATS address, ports that are free here) and the minimal Secrets (the database URL,
the callers' key file and the services' key); then Helm's order is
followed: pre-install hooks by weight (the migration Jobs, each to completion), then every pod
(init containers first, then the image's entrypoint with the rendered environment), waiting for
each one's startup and readiness probes as `--wait` does, then a caller with and without a key,
then the `helm test` pod. See
tests/pod_replay.py for what stands in for the cluster and the image.
"""

from __future__ import annotations

import functools
import subprocess
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import grpc
import pytest
from helm_chart_helpers import RELEASE, Rendered, minimal, render, resource_name
from pg_cluster import ThrowawayCluster
from pod_replay import Cluster, deployment_container, probe, stopping

from closedloop.common.v1 import common_pb2
from closedloop.identity.v1 import identity_pb2, identity_pb2_grpc
from loopkit.servicelist import listed_services
from loopkit_dev.natsserver import NatsServer, free_port
from loopkit_dev.testing import PostgresServer, api_keys

ROOT = Path(__file__).resolve().parents[1]
# Generous: five Python services starting at once on a busy two-core machine.
READY_TIMEOUT_S = 180.0
# Five migrations, five services, the test pod and the drain: above the suite's 120 s default.
pytestmark = pytest.mark.timeout(600)


def _services() -> list[str]:
    return [s.name for s in listed_services(ROOT / "services.toml")]


def _values(nats_url: str, **extra: Any) -> dict[str, Any]:
    """The minimal values: callers need API keys (the Secrets `_key_secrets` gives)."""
    ports = {name: {"grpcPort": free_port(), "httpPort": free_port()} for name in _services()}
    return minimal({"externalNats": {"url": nats_url}, "services": ports, **extra})


@functools.cache
def _tenant_key() -> str:
    """A write key of the tenant `replay` in the dev kit's key file of this test process."""
    return api_keys().tenant_key("replay", name="install-replay")


def _key_secrets() -> dict[str, dict[str, str]]:
    """The Secrets minimal-values.yaml names for callers, made from the dev kit's key file of
    this test process (hashes only; with `_tenant_key`'s) and the services' own key, as
    `closedloop keys add` would make them."""
    _tenant_key()
    keys = api_keys()
    return {
        "closedloop-api-keys": {"api-keys.json": keys.path.read_text()},
        "closedloop-api-token": {"token": keys.services_key},
    }


def _callers_need_a_key(rendered: Rendered) -> None:
    """With every pod Ready: identity answers a caller with a key of the tenant and refuses one
    without a key (so the pods read the mounted key file, not an anonymous setting)."""
    port = rendered.named("ConfigMap", resource_name("identity"))["data"]["CLOSEDLOOP_GRPC_PORT"]
    request = identity_pb2.ResolveCustomerRequest(
        tenant_id="replay",
        identities=[
            common_pb2.Identity(
                kind=common_pb2.IDENTITY_KIND_WECHAT_OPENID, scope="wx-replay", value="o-replay"
            )
        ],
    )
    key = _tenant_key()
    options = [("grpc.enable_http_proxy", 0)]
    with grpc.insecure_channel(f"127.0.0.1:{port}", options=options) as channel:
        stub = identity_pb2_grpc.IdentityServiceStub(channel)
        answer = stub.ResolveCustomer(request, metadata=api_keys().metadata(key), timeout=30)
        assert answer.customer.customer_id
        with pytest.raises(grpc.RpcError) as refused:
            stub.ResolveCustomer(request, timeout=30)
        assert refused.value.code() == grpc.StatusCode.UNAUTHENTICATED


def _wait_until(check: Callable[[], str | None], timeout_s: float, what: str) -> None:
    """Poll `check` (None = done, else the reason) like the kubelet polls a probe."""
    deadline = time.monotonic() + timeout_s
    reason = check()
    while reason is not None:
        if time.monotonic() > deadline:
            raise AssertionError(f"{what} not done after {timeout_s:.0f}s: {reason}")
        time.sleep(0.2)
        reason = check()


def _hooks(rendered: Rendered, event: str) -> list[dict[str, Any]]:
    """Hook objects of one event in Helm's order: weight, then kind, then name."""
    found = [
        o
        for o in rendered.objects
        if event in o["metadata"].get("annotations", {}).get("helm.sh/hook", "").split(",")
    ]
    return sorted(
        found,
        key=lambda o: (
            int(o["metadata"]["annotations"].get("helm.sh/hook-weight", "0")),
            o["kind"],
            o["metadata"]["name"],
        ),
    )


def _run_to_completion(
    cluster: Cluster, name: str, container: dict[str, Any], service: str
) -> None:
    proc = cluster.start(name, container, service)
    try:
        code = proc.wait(timeout=READY_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        proc.kill()
        raise AssertionError(f"{name} did not finish:\n{cluster.log_tail(name)}") from None
    assert code == 0, f"{name} exited {code}:\n{cluster.log_tail(name)}"


def _start_pods_and_wait_ready(
    cluster: Cluster, services: list[str], *, before_ready: Callable[[], None] = lambda: None
) -> None:
    """Every Deployment's pod: init containers in order, then the service; until all are Ready,
    then callers are checked. `before_ready` runs once every pod has been created (a dependency
    coming up late)."""
    rendered = cluster.rendered
    pods: dict[str, dict[str, Any]] = {}
    for service in services:
        spec = rendered.named("Deployment", resource_name(service))["spec"]["template"]["spec"]
        pods[service] = {"init": list(spec.get("initContainers", [])), "proc": None}
    processes: dict[str, subprocess.Popen[bytes]] = {}

    def advance(service: str) -> str | None:
        pod = pods[service]
        proc = pod["proc"]
        if proc is not None and proc.poll() is None:
            if pod["init"]:
                return f"init container {pod['init'][0]['name']} running"
            container = deployment_container(rendered, resource_name(service))
            return probe(container, "startupProbe") or probe(container, "readinessProbe")
        if proc is not None:
            name = f"{service}-{pod['init'][0]['name']}" if pod["init"] else service
            assert proc.returncode == 0, (
                f"{name} exited {proc.returncode}:\n{cluster.log_tail(name)}"
            )
            if not pod["init"]:
                raise AssertionError(
                    f"{service} exited 0 while starting:\n{cluster.log_tail(service)}"
                )
            pod["init"].pop(0)
        if pod["init"]:
            container = pod["init"][0]
            name = f"{service}-{container['name']}"
        else:
            container = deployment_container(rendered, resource_name(service))
            name = service
        pod["proc"] = processes[name] = cluster.start(name, container, service)
        return "starting"

    with stopping(processes) as exit_codes:
        for service in services:
            advance(service)
        before_ready()

        ready: set[str] = set()

        def all_ready() -> str | None:
            # Every pod advances each round, as in a cluster: one pod's init containers (its
            # migration) run while another's do, not after the previous pod is Ready.
            waiting = {s: r for s in services if s not in ready and (r := advance(s)) is not None}
            ready.update(s for s in services if s not in waiting)
            return "; ".join(f"{s}: {r}" for s, r in waiting.items()) or None

        _wait_until(all_ready, READY_TIMEOUT_S * len(services), "every pod Ready")
        _callers_need_a_key(rendered)
        # `helm test`: the rendered test pod's own command, gRPC health of every service.
        (test_pod,) = rendered.of_kind("Pod")
        (test_container,) = test_pod["spec"]["containers"]
        _run_to_completion(cluster, "helm-test", test_container, services[0])
    # SIGTERM (what the kubelet sends on delete): each service drained and exited cleanly.
    unclean = {name: code for name, code in exit_codes.items() if code not in (0, None)}
    unclean.update({name: code for name, code in exit_codes.items() if code is None})
    assert unclean == {}, {n: cluster.log_tail(n) for n in unclean}


def test_install_with_an_external_database_runs_migrations_first_and_every_pod_gets_ready(
    postgres: PostgresServer, nats_server: NatsServer, tmp_path: Path
) -> None:
    services = _services()
    prefix = f"closedloop_replay_{uuid.uuid4().hex[:8]}"
    postgres.created.extend(f"{prefix}_{s}" for s in services)  # dropped after the session
    rendered = render(_values(nats_server.url))
    cluster = Cluster(
        rendered,
        secrets={
            "closedloop-database": {"url": f"{postgres.base_url.rstrip('/')}/{prefix}_{{service}}"},
            **_key_secrets(),
        },
        dns={f"{RELEASE}-closedloop-{s}": "127.0.0.1" for s in services},
        workdir=tmp_path,
    )
    hooks = _hooks(rendered, "pre-install")
    jobs = [h for h in hooks if h["kind"] == "Job"]
    assert {j["metadata"]["name"] for j in jobs} == {
        f"{resource_name(s)}-migrate" for s in services
    }
    # The migration Jobs' NetworkPolicy is created before them (a default-deny namespace).
    assert hooks[0]["kind"] == "NetworkPolicy"
    for job in jobs:
        (container,) = job["spec"]["template"]["spec"]["containers"]
        service = job["metadata"]["labels"]["app.kubernetes.io/component"]
        _run_to_completion(cluster, job["metadata"]["name"], container, service)
    assert _hooks(rendered, "post-install") == []
    _start_pods_and_wait_ready(cluster, services)


def test_install_with_the_bundled_postgresql_migrates_in_init_containers_without_deadlock(
    unstarted_cluster: ThrowawayCluster, nats_server: NatsServer, tmp_path: Path
) -> None:
    services = _services()
    values = _values("nats://unused:4222", nats={"enabled": True}, postgresql={"enabled": True})
    rendered = render(values)
    # Nothing runs before the pods (the database does not exist yet) and nothing after them that
    # they would wait for: `helm install --wait` has no hook to deadlock on.
    assert _hooks(rendered, "pre-install") == []
    assert _hooks(rendered, "post-install") == []
    nats_host = nats_server.url.removeprefix("nats://")
    dns = {f"{RELEASE}-closedloop-{s}": "127.0.0.1" for s in services}
    dns |= {
        f"{RELEASE}-nats:4222": nats_host,
        f"{RELEASE}-postgresql:5432": f"127.0.0.1:{unstarted_cluster.port}",
    }
    cluster = Cluster(
        rendered,
        # What the PostgreSQL chart generates; a brace in it must not break the settings.
        secrets={f"{RELEASE}-postgresql": {"postgres-password": "gen{er}ated"}, **_key_secrets()},
        dns=dns,
        workdir=tmp_path,
    )
    # The PostgreSQL pod comes up after the services' pods were created, as it may in a cluster.
    _start_pods_and_wait_ready(cluster, services, before_ready=unstarted_cluster.start)


@pytest.mark.parametrize("service", ["referral"])
def test_a_pod_without_its_required_setting_fails_fast_with_the_reason(
    nats_server: NatsServer, tmp_path: Path, service: str
) -> None:
    """What the schema and validate.yaml prevent, seen from the pod: the chart without
    publicBaseUrl is refused, and a referral pod without it exits naming the setting."""
    rendered = render(_values(nats_server.url))
    cluster = Cluster(
        rendered,
        secrets={
            "closedloop-database": {"url": "postgresql+asyncpg://postgres@127.0.0.1:1/x"},
            **_key_secrets(),
        },
        dns={},
        workdir=tmp_path,
    )
    container = deployment_container(rendered, resource_name(service))
    env = cluster.container_env(container, service)
    del env["CLOSEDLOOP_PUBLIC_BASE_URL"]  # what the chart refuses to leave out
    done = subprocess.run(
        cluster.argv(container),
        check=False,
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode != 0
    assert "CLOSEDLOOP_REFERRAL_PUBLIC_BASE_URL is required" in done.stdout + done.stderr
