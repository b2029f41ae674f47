"""The Helm chart (deploy/helm/closedloop) and the container image, checked without a cluster.

The chart is rendered and linted by the Helm SDK in-process (helm-python-sdk), every manifest is
validated against the Kubernetes OpenAPI schemas (kubernetes-validate, strict), and the dashboards'
metric names are compared with what the services listed in services.toml really export.
"""

from __future__ import annotations

import copy
import importlib
import re
import tomllib
import warnings
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack
from pathlib import Path
from typing import Any

import helm_python as helm
import httpx
import kubernetes_validate
import nats
import pytest
import pytest_asyncio
import yaml
from google.protobuf.struct_pb2 import Struct
from helm_chart_helpers import (
    CHART,
    CRD_KINDS,
    DOCKERFILE,
    FUNNEL_METRICS,
    GATEWAY_METRICS,
    KUBE_VERSIONS,
    METRICS_PROBE,
    MINIMAL_VALUES,
    RELEASE,
    ROOT,
    SERVICE_METRICS,
    Rendered,
    dashboards,
    labels_used,
    minimal,
    pod_specs,
    production_values,
    queries,
    render,
    resource_name,
    scraped_series,
)

from closedloop.common.v1 import common_pb2
from closedloop.events.v1 import acquisition_events_pb2
from closedloop.gateway.v1 import gateway_pb2, gateway_pb2_grpc
from closedloop.identity.v1 import identity_pb2, identity_pb2_grpc
from closedloop_gateway import SPEC as GATEWAY_SPEC
from closedloop_gateway.settings import GatewaySettings
from gateway_helpers import APP as GATEWAY_APP
from gateway_helpers import TENANT as GATEWAY_TENANT
from gateway_helpers import emulator, gateway_overrides
from loopkit.events import new_envelope, subject_for
from loopkit.natsio import ensure_service_streams
from loopkit.servicelist import ListedService, listed_services
from loopkit.settings import Settings, load_settings
from loopkit_dev.natsserver import NatsServer
from loopkit_dev.testing import RunningService, api_keys, eventually, running_service

SERVICES_TOML = ROOT / "services.toml"


def listed() -> list[ListedService]:
    return listed_services(SERVICES_TOML)


VALUE_SETS = {"default": MINIMAL_VALUES, "production": production_values()}


@pytest.fixture(scope="module", params=sorted(VALUE_SETS))
def rendered(request: pytest.FixtureRequest) -> Rendered:
    """The chart rendered with the default values and with ci/production-values.yaml."""
    return render(copy.deepcopy(VALUE_SETS[request.param]))


@pytest.fixture(scope="module")
def default() -> Rendered:
    return render()


@pytest.fixture(scope="module")
def production() -> Rendered:
    return render(production_values())


def refusal(values: dict[str, Any]) -> str:
    """The error message Helm gives for values the chart must refuse."""
    with pytest.raises(helm.HelmError) as caught:
        render(minimal(values))
    return str(caught.value)


# --- lint and schemas ----------------------------------------------------------------------


@pytest.mark.parametrize("kube_version", KUBE_VERSIONS)
@pytest.mark.parametrize("value_set", sorted(VALUE_SETS))
def test_chart_lints_clean_in_strict_mode(value_set: str, kube_version: str) -> None:
    report = helm.lint(
        CHART, copy.deepcopy(VALUE_SETS[value_set]), strict=True, kube_version=f"v{kube_version}"
    )
    declared = {
        d["name"] for d in yaml.safe_load((CHART / "Chart.yaml").read_text())["dependencies"]
    }
    problems = []
    for message in report["messages"]:
        if message["severity"] < 2:
            continue  # info ("icon is recommended")
        missing = re.fullmatch(
            r"chart directory is missing these dependencies: (.*)", message["error"]
        )
        if missing and set(missing.group(1).split(",")) <= declared:
            # The optional NATS/PostgreSQL charts are fetched by `helm dependency build`, which
            # needs the network; they are off by default (docs/deployment.md).
            continue
        problems.append(message)
    assert problems == []


def test_every_manifest_is_valid_for_kubernetes(rendered: Rendered) -> None:
    failures = []
    kinds = set()
    for obj in rendered.objects:
        kinds.add(obj["kind"])
        if obj["kind"] in CRD_KINDS:
            continue
        for version in KUBE_VERSIONS:
            try:
                kubernetes_validate.validate(obj, version, strict=True)
            except kubernetes_validate.SchemaNotFoundError as exc:
                # An unknown core kind or apiVersion is a mistake, not a warning.
                failures.append(f"{obj['kind']}/{obj['metadata']['name']} on {version}: {exc}")
            except kubernetes_validate.ValidationError as exc:
                where = "/".join(str(p) for p in exc.path)
                failures.append(
                    f"{obj['kind']}/{obj['metadata']['name']} on {version}: {where}: {exc.message}"
                )
    assert failures == []
    assert {"Deployment", "Service", "ConfigMap", "NetworkPolicy", "Job", "Pod"} <= kinds


def test_service_monitors_scrape_the_metrics_port_of_a_service(production: Rendered) -> None:
    monitors = production.of_kind("ServiceMonitor")
    assert {m["metadata"]["name"] for m in monitors} == {
        s["metadata"]["name"] for s in production.of_kind("Service")
    }
    for monitor in monitors:
        assert monitor["apiVersion"] == "monitoring.coreos.com/v1"
        assert set(monitor) == {"apiVersion", "kind", "metadata", "spec"}
        spec = monitor["spec"]
        service = production.named("Service", monitor["metadata"]["name"])
        labels = service["metadata"]["labels"]
        assert spec["selector"]["matchLabels"].items() <= labels.items()
        ports = {p["name"] for p in service["spec"]["ports"]}
        for endpoint in spec["endpoints"]:
            assert endpoint["port"] in ports
            assert endpoint["path"] == "/metrics"
            assert re.fullmatch(r"\d+[smh]", endpoint["interval"])
        assert monitor["metadata"]["labels"]["release"] == "kube-prometheus-stack"


def test_a_typo_in_values_is_refused_by_the_schema() -> None:
    assert "'replica' not allowed" in refusal({"services": {"identity": {"replica": 3}}})
    assert "'enable' not allowed" in refusal({"defaults": {"autoscaling": {"enable": True}}})
    assert "'ingres' not allowed" in refusal({"ingres": {"enabled": True}})
    assert "grpcPort" in refusal({"services": {"identity": {"grpcPort": "50051"}}})
    assert "readiness" in refusal({"defaults": {"readiness": "tcp"}})
    # Running as root cannot be configured.
    assert "runAsNonRoot" in refusal({"securityContext": {"runAsNonRoot": False}})


def test_inconsistent_values_are_refused_with_a_reason() -> None:
    assert 'calls lists "billing"' in refusal(
        {"services": {"referral": {"calls": ["identity", "billing"]}}}
    )
    assert "minReplicas (5) is above maxReplicas (2)" in refusal(
        {"defaults": {"autoscaling": {"enabled": True, "minReplicas": 5, "maxReplicas": 2}}}
    )
    assert "maxUnavailable is 0" in refusal(
        {"services": {"identity": {"podDisruptionBudget": {"maxUnavailable": 0}}}}
    )
    assert "has no database" in refusal({"externalDatabase": {"existingSecret": ""}})
    assert "not clustered" in refusal({"nats": {"enabled": True}, "streamReplicas": 3})
    assert "grpcPort and httpPort are both 8081" in refusal(
        {"services": {"identity": {"grpcPort": 8081}}}
    )
    # With API keys on, the services need a key of their own to reach each other.
    assert "set apiToken.existingSecret" in refusal(
        {"apiKeys": {"existingSecret": "keys"}, "apiToken": {"existingSecret": ""}}
    )


def test_callers_need_keys_unless_anonymous_callers_are_allowed_on_purpose() -> None:
    """A service without a key file refuses to start, so the chart refuses to render without
    one; allowAnonymousCallers=true is the explicit, loudly noted way out."""
    no_keys = {"apiKeys": {"existingSecret": ""}, "apiToken": {"existingSecret": ""}}
    reason = refusal(no_keys)
    assert "callers need API keys" in reason and "allowAnonymousCallers" in reason
    keyed = render()
    config = keyed.named("ConfigMap", f"{RELEASE}-closedloop-settings")["data"]
    assert config["CLOSEDLOOP_API_KEYS_FILE"].endswith("/api-keys.json")
    assert "CLOSEDLOOP_ALLOW_ANONYMOUS_CALLERS" not in config
    anonymous = render(minimal({**no_keys, "allowAnonymousCallers": True}))
    config = anonymous.named("ConfigMap", f"{RELEASE}-closedloop-settings")["data"]
    assert config["CLOSEDLOOP_ALLOW_ANONYMOUS_CALLERS"] == "1"
    assert "CLOSEDLOOP_API_KEYS_FILE" not in config
    assert "callers are NOT authenticated" in anonymous.notes


# --- what the platform needs from the chart ---------------------------------------------------


def test_every_listed_service_has_a_deployment_with_its_spec_ports(rendered: Rendered) -> None:
    services = listed()
    assert services, "services.toml lists no service"
    for service in services:
        spec = service.definition().spec
        deployment = rendered.named("Deployment", resource_name(service.name))
        (container,) = deployment["spec"]["template"]["spec"]["containers"]
        # The container is named after the service: the dashboards select on it.
        assert container["name"] == service.name
        ports = {p["name"]: p["containerPort"] for p in container["ports"]}
        assert ports == {"grpc": spec.grpc_port, "http": spec.http_port}, service.name
        svc = rendered.named("Service", resource_name(service.name))
        assert {p["name"]: p["port"] for p in svc["spec"]["ports"]} == ports
        settings = rendered.named("ConfigMap", resource_name(service.name))["data"]
        assert settings["CLOSEDLOOP_GRPC_PORT"] == str(spec.grpc_port)
        assert settings["CLOSEDLOOP_HTTP_PORT"] == str(spec.http_port)
        job = rendered.named("Job", f"{resource_name(service.name)}-migrate")
        (migrate,) = job["spec"]["template"]["spec"]["containers"]
        assert migrate["command"] == ["closedloop", "migrate", service.name]


def test_every_probe_targets_a_port_of_its_container(rendered: Rendered) -> None:
    for where, spec in pod_specs(rendered):
        for container in spec["containers"]:
            ports = container.get("ports", [])
            names = {p["name"] for p in ports}
            numbers = {p["containerPort"] for p in ports}
            for kind in ("startupProbe", "livenessProbe", "readinessProbe"):
                probe = container.get(kind)
                if probe is None:
                    assert not where.startswith("Deployment"), f"{where}: no {kind}"
                    continue
                action = probe.get("grpc") or probe.get("httpGet") or probe.get("tcpSocket")
                port = action["port"]
                assert port in (names if isinstance(port, str) else numbers), f"{where} {kind}"
            if where.startswith("Deployment"):
                assert "grpc" in container["livenessProbe"]
                assert "grpc" in container["startupProbe"]


def test_public_edges_are_ready_on_http_the_others_on_grpc_health(default: Rendered) -> None:
    values = yaml.safe_load((CHART / "values.yaml").read_text())
    for name, entry in values["services"].items():
        deployment = default.named("Deployment", resource_name(name))
        readiness = deployment["spec"]["template"]["spec"]["containers"][0]["readinessProbe"]
        if entry["public"]:
            assert readiness["httpGet"] == {"path": "/readyz", "port": "http"}
        else:
            assert readiness["grpc"] == {"port": entry["grpcPort"]}


def test_no_container_runs_as_root_or_with_privileges(rendered: Rendered) -> None:
    for where, spec in pod_specs(rendered):
        pod_ctx = spec["securityContext"]
        assert pod_ctx["runAsNonRoot"] is True, where
        assert pod_ctx["runAsUser"] != 0, where
        assert pod_ctx["seccompProfile"] == {"type": "RuntimeDefault"}, where
        assert spec["automountServiceAccountToken"] is False, where
        for container in spec["containers"] + spec.get("initContainers", []):
            ctx = container["securityContext"]
            assert ctx["runAsNonRoot"] is True, where
            assert ctx.get("runAsUser", pod_ctx["runAsUser"]) != 0, where
            assert ctx["allowPrivilegeEscalation"] is False, where
            assert ctx["readOnlyRootFilesystem"] is True, where
            assert ctx["capabilities"]["drop"] == ["ALL"], where
            assert "privileged" not in ctx or ctx["privileged"] is False, where
    for account in rendered.of_kind("ServiceAccount"):
        assert account["automountServiceAccountToken"] is False


def test_termination_grace_fits_the_drain(rendered: Rendered) -> None:
    for deployment in rendered.of_kind("Deployment"):
        name = deployment["metadata"]["name"]
        pod = deployment["spec"]["template"]["spec"]
        grace = float(rendered.named("ConfigMap", name)["data"]["CLOSEDLOOP_SHUTDOWN_GRACE_S"])
        (container,) = pod["containers"]
        sleep = int(container["lifecycle"]["preStop"]["exec"]["command"][1])
        # preStop, then the runtime's stop(): gRPC drain, workers, outbox flush (each up to
        # the grace), then uvicorn's 5 s.
        assert pod["terminationGracePeriodSeconds"] >= sleep + 3 * grace + 5, name


def test_secrets_come_only_from_referenced_secrets(rendered: Rendered) -> None:
    assert rendered.of_kind("Secret") == []
    for where, spec in pod_specs(rendered):
        for container in spec["containers"]:
            for env in container.get("env", []):
                if env["name"] in ("CLOSEDLOOP_DATABASE_URL", "CLOSEDLOOP_API_TOKEN"):
                    assert "secretKeyRef" in env["valueFrom"], f"{where} {env['name']}"
    for cm in rendered.of_kind("ConfigMap"):
        for key in cm["data"]:
            assert not re.search(r"PASSWORD|TOKEN|AES|SECRET|DATABASE_URL", key), key


def test_production_values_scale_and_reference_external_secrets(production: Rendered) -> None:
    hpas = {h["metadata"]["name"]: h["spec"] for h in production.of_kind("HorizontalPodAutoscaler")}
    for deployment in production.of_kind("Deployment"):
        name = deployment["metadata"]["name"]
        if name == resource_name("retention"):
            assert deployment["spec"]["replicas"] == 2  # its own autoscaling: false wins
            assert name not in hpas
            continue
        assert "replicas" not in deployment["spec"]  # the HPA owns it
        assert hpas[name]["minReplicas"] == 3
        assert hpas[name]["scaleTargetRef"]["name"] == name
    assert hpas[resource_name("identity")]["maxReplicas"] == 20
    acquisition = production.named("Deployment", resource_name("acquisition"))
    volumes = acquisition["spec"]["template"]["spec"]["volumes"]
    assert {"closedloop-wechat-accounts", "closedloop-api-keys"} == {
        v["secret"]["secretName"] for v in volumes[1:]
    }
    shared = production.named("ConfigMap", "cl-closedloop-settings")["data"]
    assert shared["CLOSEDLOOP_STREAM_REPLICAS"] == "3"
    # Callers need API keys: the key file comes from the Secret, mounted in every service.
    assert shared["CLOSEDLOOP_API_KEYS_FILE"] == "/etc/closedloop/api-keys/api-keys.json"
    pod = acquisition["spec"]["template"]["spec"]
    assert {
        "name": "api-keys",
        "secret": {
            "secretName": "closedloop-api-keys",
            "items": [{"key": "api-keys.json", "path": "api-keys.json"}],
        },
    } in pod["volumes"]
    assert shared["OTEL_EXPORTER_OTLP_ENDPOINT"].startswith("http://otel-collector")
    assert shared["CLOSEDLOOP_GRPC_HOST"] == "0.0.0.0"
    assert shared["CLOSEDLOOP_IDENTITY_URL"] == f"{resource_name('identity')}:50051"
    assert {p["metadata"]["name"] for p in production.of_kind("PodDisruptionBudget")} == set(
        hpas
    ) | {resource_name("retention")}


def test_network_policies_admit_only_what_each_service_needs(production: Rendered) -> None:
    def policy(service: str) -> dict[str, Any]:
        spec: dict[str, Any] = production.named("NetworkPolicy", resource_name(service))["spec"]
        return spec

    identity = policy("identity")
    grpc_rule = next(r for r in identity["ingress"] if r["ports"][0]["port"] == "grpc")
    callers = {
        peer["podSelector"]["matchLabels"].get("app.kubernetes.io/component")
        for peer in grpc_rule["from"]
        if "podSelector" in peer
    }
    # Retention and the gateway call identity only for the data keys that open personal values
    # in events (loopkit.pii).
    assert callers == {"acquisition", "conversion", "retention", "referral", "gateway", "helm-test"}
    # Identity is not a public edge: no rule admits the ingress controller to it.
    assert len(identity["ingress"]) == 2
    acquisition = policy("acquisition")
    assert any(
        r["ports"][0]["port"] == "http" and r.get("from", [{}])[0].get("namespaceSelector")
        for r in acquisition["ingress"]
    )
    egress_ports = {p["port"] for r in acquisition["egress"] for p in r["ports"]}
    assert egress_ports == {53, 50051, 50056, 4222, 5432, 4317}
    retention_ports = {p["port"] for r in policy("retention")["egress"] for p in r["ports"]}
    assert retention_ports == {53, 50051, 50056, 4222, 5432, 4317}
    # Only the gateway reaches the internet (WeChat's APIs over HTTPS).
    for service in ("identity", "acquisition", "conversion", "retention", "referral"):
        assert 443 not in {p["port"] for r in policy(service)["egress"] for p in r["ports"]}
    assert 443 in {p["port"] for r in policy("gateway")["egress"] for p in r["ports"]}
    # Nothing else calls out to the internet (migration Jobs, the test pod included).
    for np in production.of_kind("NetworkPolicy"):
        if np["metadata"]["name"] != resource_name("gateway"):
            assert 443 not in {p["port"] for r in np["spec"]["egress"] for p in r["ports"]}


def test_ingress_routes_only_the_public_paths(production: Rendered) -> None:
    paths = {}
    for ingress in production.of_kind("Ingress"):
        (rule,) = ingress["spec"]["rules"]
        assert rule["host"] == "wx.example.com"
        for path in rule["http"]["paths"]:
            paths[path["path"]] = path["backend"]["service"]["name"]
            assert path["backend"]["service"]["port"] == {"name": "http"}
        assert ingress["spec"]["tls"][0]["secretName"] == "wx-example-com-tls"
    assert paths == {
        "/v1/wechat": resource_name("acquisition"),
        "/p": resource_name("acquisition"),
        "/v1/forms": resource_name("acquisition"),
        "/v1/wecom": resource_name("conversion"),
        # The chat-archive import, for the exporter holding the API token.
        "/v1/tenants": resource_name("conversion"),
        "/r": resource_name("referral"),
        "/u": resource_name("retention"),
    }


def test_helm_test_pod_checks_the_grpc_health_of_every_service(rendered: Rendered) -> None:
    (pod,) = rendered.of_kind("Pod")
    assert pod["metadata"]["annotations"]["helm.sh/hook"] == "test"
    (container,) = pod["spec"]["containers"]
    assert "grpc_health" in container["command"][2]
    targets = container["command"][3:]
    for deployment in rendered.of_kind("Deployment"):
        (c,) = deployment["spec"]["template"]["spec"]["containers"]
        grpc_port = next(p["containerPort"] for p in c["ports"] if p["name"] == "grpc")
        assert f"{deployment['metadata']['name']}:{grpc_port}" in targets


def test_adding_a_service_is_one_values_entry() -> None:
    rendered = render(minimal({"services": {"billing": {"grpcPort": 50060, "httpPort": 8090}}}))
    name = resource_name("billing")
    for kind in ("Deployment", "Service", "ConfigMap", "ServiceAccount", "NetworkPolicy"):
        rendered.named(kind, name)
    rendered.named("PodDisruptionBudget", name)
    rendered.named("Job", f"{name}-migrate")
    rendered.named("ConfigMap", f"{name}-dashboard")
    assert f"{name}:50060" in rendered.of_kind("Pod")[0]["spec"]["containers"][0]["command"]
    disabled = render(minimal({"services": {"referral": {"enabled": False}}}))
    assert all(o["metadata"]["name"] != resource_name("referral") for o in disabled.objects)


def test_bundled_nats_and_postgresql_are_wired_when_enabled() -> None:
    rendered = render(minimal({"nats": {"enabled": True}, "postgresql": {"enabled": True}}))
    shared = rendered.named("ConfigMap", "cl-closedloop-settings")["data"]
    assert shared["CLOSEDLOOP_NATS_URL"] == "nats://cl-nats:4222"
    deployment = rendered.named("Deployment", resource_name("identity"))
    env = {e["name"]: e for e in deployment["spec"]["template"]["spec"]["containers"][0]["env"]}
    assert env["CLOSEDLOOP_POSTGRES_PASSWORD"]["valueFrom"]["secretKeyRef"]["name"] == (
        "cl-postgresql"
    )
    assert env["CLOSEDLOOP_DATABASE_URL"]["value"] == (
        "postgresql+asyncpg://postgres:$(CLOSEDLOOP_POSTGRES_PASSWORD)"
        "@cl-postgresql:5432/closedloop_{service}"
    )
    # The bundled database exists only once the release is installed: no hook can migrate it
    # before the pods (pre-install) and a post-install one would deadlock `helm install --wait`.
    assert rendered.of_kind("Job") == []
    assert not any(
        "post-install" in o["metadata"].get("annotations", {}).get("helm.sh/hook", "")
        for o in rendered.objects
    )
    for deployment in rendered.of_kind("Deployment"):
        service = deployment["metadata"]["labels"]["app.kubernetes.io/component"]
        (init,) = deployment["spec"]["template"]["spec"]["initContainers"]
        assert init["command"] == ["closedloop", "migrate", service, "--wait", "300"]
        assert init["env"] == deployment["spec"]["template"]["spec"]["containers"][0]["env"]
    for obj in rendered.objects:  # the init containers are valid Kubernetes too
        kubernetes_validate.validate(obj, KUBE_VERSIONS[0], strict=True)


# --- issue 16: what a platform team hit between `helm install` and a working loop ------------


def test_share_links_need_a_public_base_url_never_the_bind_address() -> None:
    assert "publicBaseUrl is required" in refusal({"publicBaseUrl": ""})
    assert "publicBaseUrl" in refusal({"publicBaseUrl": "wx.example.com"})  # no scheme
    given = render(minimal({"publicBaseUrl": "https://links.example.com/"}))
    shared = given.named("ConfigMap", "cl-closedloop-settings")["data"]
    assert shared["CLOSEDLOOP_PUBLIC_BASE_URL"] == "https://links.example.com"
    # With an Ingress the host is the default, https when it has TLS.
    prod = render(production_values())
    shared = prod.named("ConfigMap", "cl-closedloop-settings")["data"]
    assert shared["CLOSEDLOOP_PUBLIC_BASE_URL"] == "https://wx.example.com"
    # The migration Job loads referral's settings too, so it gets the value as well.
    job = prod.named("Job", f"{resource_name('referral')}-migrate")
    env = {
        e["name"]: e.get("value") for e in job["spec"]["template"]["spec"]["containers"][0]["env"]
    }
    assert env["CLOSEDLOOP_PUBLIC_BASE_URL"] == "https://wx.example.com"
    # Without referral nothing needs it.
    keys = {k: MINIMAL_VALUES[k] for k in ("apiKeys", "apiToken")}
    render({"services": {"referral": {"enabled": False}}, **keys})


def test_external_database_migrates_in_pre_install_hooks_before_any_pod(default: Rendered) -> None:
    jobs = default.of_kind("Job")
    assert {j["metadata"]["name"] for j in jobs} == {
        f"{resource_name(s.name)}-migrate" for s in listed()
    }
    for job in jobs:
        assert job["metadata"]["annotations"]["helm.sh/hook"] == "pre-install,pre-upgrade"
    for deployment in default.of_kind("Deployment"):
        assert "initContainers" not in deployment["spec"]["template"]["spec"]


def test_migration_jobs_and_the_test_pod_have_network_policies(rendered: Rendered) -> None:
    migrate = rendered.named("NetworkPolicy", "cl-closedloop-migrate")
    annotations = migrate["metadata"]["annotations"]
    # Created before the Jobs (lower weight), on install and upgrade alike.
    assert annotations["helm.sh/hook"] == "pre-install,pre-upgrade"
    job_weights = {
        int(j["metadata"]["annotations"]["helm.sh/hook-weight"]) for j in rendered.of_kind("Job")
    }
    assert int(annotations["helm.sh/hook-weight"]) < min(job_weights)
    assert migrate["spec"]["ingress"] == []
    assert {p["port"] for r in migrate["spec"]["egress"] for p in r["ports"]} == {53, 5432}
    test = rendered.named("NetworkPolicy", "cl-closedloop-test")
    assert "helm.sh/hook" not in test["metadata"].get("annotations", {})
    grpc_ports = {
        p["containerPort"]
        for d in rendered.of_kind("Deployment")
        for p in d["spec"]["template"]["spec"]["containers"][0]["ports"]
        if p["name"] == "grpc"
    }
    assert {p["port"] for r in test["spec"]["egress"] for p in r["ports"]} == {53} | grpc_ports


def test_no_service_writes_a_file_that_grows_on_its_small_volume(rendered: Rendered) -> None:
    shared = rendered.named("ConfigMap", "cl-closedloop-settings")["data"]
    for deployment in rendered.of_kind("Deployment"):
        pod = deployment["spec"]["template"]["spec"]
        # The one writable volume; any other is a Secret, mounted read-only.
        assert [v["name"] for v in pod["volumes"] if "secret" not in v] == ["tmp"]
        secrets = {v["name"] for v in pod["volumes"] if "secret" in v}
        mounts = {m["name"]: m for m in pod["containers"][0]["volumeMounts"]}
        assert all(m.get("readOnly") for name, m in mounts.items() if name in secrets)
        # The API key Secret sits where the setting points.
        for volume in (v for v in pod["volumes"] if v["name"] == "api-keys"):
            path = shared["CLOSEDLOOP_API_KEYS_FILE"]
            assert (
                path == f"{mounts['api-keys']['mountPath']}/{volume['secret']['items'][0]['path']}"
            )
    assert shared["CLOSEDLOOP_STATE_DIR"] == "/tmp/closedloop"
    # The sandbox senders record in memory only (the WeChat gateway will replace them).
    conversion = rendered.named("ConfigMap", resource_name("conversion"))["data"]
    assert conversion["CLOSEDLOOP_CONVERSION_SANDBOX_LOG"] == ""
    retention = rendered.named("ConfigMap", resource_name("retention"))["data"]
    assert retention["CLOSEDLOOP_RETENTION_SANDBOX_LOG"] == ""


def test_retention_settings_are_chart_values_with_the_services_defaults(default: Rendered) -> None:
    """Every retention setting of the kit is a value of the chart, and the chart's defaults are
    the services' own; the services accept what the chart renders."""
    shared = default.named("ConfigMap", "cl-closedloop-settings")["data"]
    names = [
        "outbox_retention_s",
        "inbox_retention_s",
        "retention_sweep_interval_s",
        "stream_max_age_s",
        "deadletter_max_age_s",
        "idempotency_key_retention_s",
    ]
    defaults = Settings()
    for name in names:
        assert float(shared[f"CLOSEDLOOP_{name.upper()}"]) == getattr(defaults, name), name
    rendered = {name: shared[f"CLOSEDLOOP_{name.upper()}"] for name in names}
    Settings(**rendered)  # type: ignore[arg-type]


def test_routed_callbacks_need_the_account_registry() -> None:
    prod = production_values()
    del prod["wechatAccounts"]
    assert "wechatAccounts.existingSecret is needed" in refusal(prod)
    # An install without callbacks says so explicitly.
    for name in ("acquisition", "conversion"):
        prod["services"][name]["wechatAccounts"] = False
    render(prod)


def test_one_account_secret_is_mounted_into_the_services_dealing_with_wechat(
    production: Rendered,
) -> None:
    """Configured once: the same Secret is the registry file of the gateway, acquisition and
    conversion; no other service sees it, and only the gateway may reach the internet."""
    mounted: dict[str, list[str]] = {}
    for deployment in production.of_kind("Deployment"):
        name = deployment["metadata"]["labels"]["app.kubernetes.io/component"]
        pod = deployment["spec"]["template"]["spec"]
        container = pod["containers"][0]
        secret_refs = [e["secretRef"]["name"] for e in container["envFrom"] if "secretRef" in e]
        # Only retention reads a Secret of its own: the unsubscribe links' signing key.
        expected = ["closedloop-retention-unsubscribe"] if name == "retention" else []
        assert secret_refs == expected, name
        volumes = {v["name"]: v for v in pod["volumes"]}
        files = {e["value"] for e in container["env"] if e["name"] == "CLOSEDLOOP_ACCOUNTS_FILE"}
        mounted[name] = []
        for mount in container["volumeMounts"]:
            secret = volumes[mount["name"]].get("secret")
            if secret is None or mount["name"] == "api-keys":
                continue  # the API key file: every service's, checked elsewhere
            assert mount["readOnly"] is True
            assert secret["items"] == [{"key": "accounts.json", "path": "accounts.json"}]
            assert files == {f"{mount['mountPath']}/accounts.json"}
            mounted[name].append(secret["secretName"])
        definition = importlib.import_module(f"closedloop_{name}.main").DEFINITION
        # The file is read by a setting the service really has.
        assert ("accounts_file" in definition.settings_cls.model_fields) == bool(files), name
    readers = ["acquisition", "conversion", "gateway"]
    assert {n: m for n, m in mounted.items() if m} == {
        n: ["closedloop-wechat-accounts"] for n in readers
    }
    policies = {p["metadata"]["name"]: p["spec"] for p in production.of_kind("NetworkPolicy")}
    for name in readers:
        egress = policies[resource_name(name)]["egress"]
        assert (443 in {p["port"] for r in egress for p in r["ports"]}) == (name == "gateway")


def test_grpc_egress_matches_the_calls_each_service_makes() -> None:
    """`calls` opens egress to identity and the gateway; it must list exactly the services whose
    code has a client of each (retention, which learns about customers from events, has no
    identity client; the gateway asks identity only for the data keys that open the personal
    values in events, `reads_personal_data`)."""
    values = yaml.safe_load((CHART / "values.yaml").read_text())
    for name, entry in values["services"].items():
        package = ROOT / "services" / name / "src" / f"closedloop_{name}"
        source = "\n".join(p.read_text() for p in package.rglob("*.py"))
        uses_identity = (
            "loopkit.identity_client" in source or "reads_personal_data = True" in source
        )
        assert ("identity" in entry["calls"]) == uses_identity, name
        uses_gateway = "loopkit.gateway_client" in source or "gateway_pb2_grpc" in source
        assert ("gateway" in entry["calls"]) == (uses_gateway and name != "gateway"), name


def test_the_chat_archive_import_is_reachable(production: Rendered) -> None:
    conversion = production.named("NetworkPolicy", resource_name("conversion"))["spec"]
    archive_peers = [
        peer
        for rule in conversion["ingress"]
        if rule["ports"][0]["port"] == "http"
        for peer in rule["from"]
    ]
    assert {
        "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "wecom-archive"}}
    } in archive_peers
    # The route exists in the service, under the path the Ingress routes.
    from closedloop_conversion.transport.http import ConversionHttp

    assert any(
        r.path.startswith("/v1/tenants/")
        for r in ConversionHttp.router(object.__new__(ConversionHttp)).routes  # type: ignore[attr-defined]
    )
    no_token = production_values()
    no_token["apiToken"]["existingSecret"] = ""
    no_token["apiKeys"]["existingSecret"] = ""  # (keys without the token are refused first)
    no_token["allowAnonymousCallers"] = True  # (and no keys at all, before that)
    assert "would be routed to the internet without a token" in refusal(no_token)


def test_topology_spread_counts_each_service_on_its_own(rendered: Rendered) -> None:
    for deployment in rendered.of_kind("Deployment"):
        own = deployment["spec"]["selector"]["matchLabels"]
        for constraint in deployment["spec"]["template"]["spec"]["topologySpreadConstraints"]:
            assert constraint["labelSelector"]["matchLabels"] == own
    everyone = {"app.kubernetes.io/name": "closedloop"}
    spread = [
        {
            "maxSkew": 1,
            "topologyKey": "topology.kubernetes.io/zone",
            "whenUnsatisfiable": "ScheduleAnyway",
            "labelSelector": {"matchLabels": everyone},
        }
    ]
    assert "does not select app.kubernetes.io/component" in refusal(
        {"defaults": {"topologySpreadConstraints": spread}}
    )


def test_notes_tell_which_secrets_to_create(production: Rendered) -> None:
    for secret in (
        "closedloop-postgres-url",
        "closedloop-api-token",
        "closedloop-api-keys",
    ):
        assert secret in production.notes
    assert "helm test cl" in production.notes
    # Where share links point, and the real stream names, for changing their retention.
    assert "https://wx.example.com/r/<code>" in production.notes
    assert "IDENTITY, ACQUISITION" in production.notes
    # The account registry (its key and who reads it), and that only the gateway reaches out.
    registry = (
        'closedloop-wechat-accounts (key "accounts.json"): the WeChat account registry'
        " (CLOSEDLOOP_ACCOUNTS_FILE), mounted into acquisition, conversion, gateway"
    )
    assert registry in production.notes
    assert "Internet egress (HTTPS, 443): gateway only" in production.notes
    assert "(not set) wechatAccounts.existingSecret" not in production.notes


def test_notes_warn_when_no_service_knows_an_account(default: Rendered) -> None:
    assert "(not set) wechatAccounts.existingSecret" in default.notes
    assert "every send, QR code and sign-in answers NOT_FOUND" in default.notes


# --- the image ----------------------------------------------------------------------------


def test_dockerfile_builds_each_listed_service_from_the_lock() -> None:
    dockerfile = DOCKERFILE.read_text()
    lock = tomllib.loads((ROOT / "uv.lock").read_text())
    locked = {p["name"] for p in lock["package"]}
    kit = tomllib.loads((ROOT / "libs/kit/pyproject.toml").read_text())
    # The migration Job's command.
    assert kit["project"]["scripts"]["closedloop"] == "loopkit.cli:main"
    for service in listed():
        assert f"closedloop-{service.name}" in locked
        package = ROOT / "services" / service.name / "src" / service.module
        # The entrypoint: python -m closedloop_<name>.
        assert (package / "__main__.py").is_file(), f"{service.module} has no __main__"
        assert service.module == f"closedloop_{service.name}"
    assert '--package "closedloop-${SERVICE}"' in dockerfile
    assert "--no-dev" in dockerfile
    assert re.search(r"^USER 10001:10001$", dockerfile, re.M)
    assert 'exec python -m \\"$SERVICE_MODULE\\"' in dockerfile
    for source in ("gen/python", "libs/kit"):
        assert source in dockerfile and (ROOT / source / "pyproject.toml").is_file()
    ignored = (ROOT / ".dockerignore").read_text().split()
    assert {".venv", ".git", "**/tests", "node_modules"} <= set(ignored)
    assert not {"gen", "libs", "services", "uv.lock", "pyproject.toml"} & set(ignored)


# --- dashboards ---------------------------------------------------------------------------


def test_dashboards_are_valid_json_one_per_service_plus_the_funnel(rendered: Rendered) -> None:
    found = dashboards(rendered)
    services = {
        d["metadata"]["labels"]["app.kubernetes.io/component"]
        for d in rendered.of_kind("Deployment")
    }
    # A service with business panels of its own (dashboards/<name>.json) gets a second board.
    own = {s for s in services if (CHART / "dashboards" / f"{s}.json").is_file()}
    assert "gateway" in own
    assert set(found) == (
        {f"closedloop-{s}.json" for s in services}
        | {f"closedloop-{s}-business.json" for s in own}
        | {"closedloop-funnel.json"}
    )
    uids = [d["uid"] for d in found.values()]
    assert len(uids) == len(set(uids))
    for name, board in found.items():
        assert board["panels"], name
        assert "__SERVICE__" not in str(board), name
        for panel in board["panels"]:
            if panel["type"] != "row":
                assert panel["targets"], f"{name}: {panel['title']}"
    funnel = "\n".join(queries(found["closedloop-funnel.json"]))
    for metric in FUNNEL_METRICS:
        assert metric in funnel
    gateway = "\n".join(queries(found["closedloop-gateway-business.json"]))
    for metric in GATEWAY_METRICS:
        assert metric in gateway


@pytest_asyncio.fixture(loop_scope="session")
async def platform_metrics(
    nats_server: NatsServer, tmp_path: Path
) -> AsyncIterator[dict[str, dict[str, set[str]]]]:
    """Every listed service running in this process after one ResolveCustomer, one gateway send
    and one quota read: its /metrics."""
    async with AsyncExitStack() as stack:
        running: dict[str, RunningService] = {}
        # The gateway talks to the WeChat emulator (its own process) with the gateway tests'
        # accounts, so its per-account quota and token series exist.
        wechat = stack.enter_context(emulator(tmp_path))
        for service in sorted(listed(), key=lambda s: s.name != "identity"):
            extra: dict[str, object] = {}
            if service.name != "identity":
                extra["identity_url"] = running["identity"].grpc_target
            if service.name == "gateway":
                extra.update(gateway_overrides(wechat.url))
            if service.name == "retention":
                # The per-tenant funnel gauges, refreshed at once after the touch below.
                extra["funnel_metrics_interval_s"] = 0.2
            running[service.name] = await stack.enter_async_context(
                running_service(
                    service.definition(),
                    database_url=f"sqlite+aiosqlite:///{tmp_path}/{service.name}.db",
                    nats_url=nats_server.url,
                    state_dir=tmp_path,
                    **extra,
                )
            )
        probe = METRICS_PROBE.runtime(
            Settings(
                service="helmprobe",
                database_url=f"sqlite+aiosqlite:///{tmp_path}/helmprobe.db",
                nats_url=nats_server.url,
                grpc_port=0,
                http_port=0,
                state_dir=tmp_path,
                api_keys_file=api_keys().path,
            )
        )
        async with probe.engine.begin() as conn:
            await conn.run_sync(METRICS_PROBE.metadata.create_all)
        await probe.start()
        stack.push_async_callback(probe.stop)

        attributes = Struct()
        stub = identity_pb2_grpc.IdentityServiceStub(running["identity"].channel)
        await stub.ResolveCustomer(
            identity_pb2.ResolveCustomerRequest(
                tenant_id="helm-metrics",
                identities=[
                    common_pb2.Identity(
                        kind=common_pb2.IDENTITY_KIND_EXTERNAL, value="helm-chart-test"
                    )
                ],
                attributes=attributes,
                actor="test",
            )
        )
        # One send through the gateway (token fetched, WeChat called) and one quota read.
        gateway = gateway_pb2_grpc.GatewayServiceStub(running["gateway"].channel)  # type: ignore[no-untyped-call]
        await gateway.SendMessage(
            gateway_pb2.SendMessageRequest(
                tenant_id=GATEWAY_TENANT,
                idempotency_key="helm-metrics-send",
                official_account_template=gateway_pb2.OfficialAccountTemplate(
                    app_id=GATEWAY_APP,
                    openid="o-helm-metrics",
                    template_id="tpl-helm",
                    data={"first": "hello"},
                ),
            )
        )

        async def sent() -> bool:
            answer = await gateway.GetSend(
                gateway_pb2.GetSendRequest(
                    tenant_id=GATEWAY_TENANT, idempotency_key="helm-metrics-send"
                )
            )
            return bool(answer.send.status == gateway_pb2.SEND_STATUS_SENT)

        await eventually(sent)
        await gateway.GetQuotaStatus(
            gateway_pb2.GetQuotaStatusRequest(tenant_id=GATEWAY_TENANT, app_id=GATEWAY_APP)
        )
        # One scan, as acquisition publishes it: retention's funnel read model gets a tenant.
        await _publish_touch(nats_server.url)
        client = await stack.enter_async_context(httpx.AsyncClient(trust_env=False))

        async def scrape(url: str) -> dict[str, set[str]]:
            reply = await client.get(f"{url}/metrics")
            reply.raise_for_status()
            return scraped_series(reply.text)

        async def events_flowed() -> bool:
            series = await scrape(running["identity"].http_url)
            return {
                "closedloop_outbox_published_total",
                "closedloop_events_consumed_total",
                "closedloop_consumer_pending",
            } <= set(series)

        await eventually(events_flowed)
        if "retention" in running:

            async def funnel_shown() -> bool:
                series = await scrape(running["retention"].http_url)
                return "tenant" in series.get("closedloop_funnel_customers", set())

            await eventually(funnel_shown)
        for svc in running.values():  # one HTTP request each, so the HTTP histogram exists
            (await client.get(f"{svc.http_url}/healthz")).raise_for_status()
        yield {name: await scrape(svc.http_url) for name, svc in running.items()}


async def _publish_touch(nats_url: str) -> None:
    nc = await nats.connect(nats_url)
    try:
        js = nc.jetstream()
        await ensure_service_streams(js, "acquisition", replicas=1)
        env = new_envelope(
            producer="acquisition",
            event_type="touch.recorded",
            tenant_id="helm-metrics",
            customer_id="helm-chart-customer",
            payload=acquisition_events_pb2.TouchRecorded(
                touch_id="helm-touch", channel_id="helm-channel", campaign_id="helm-campaign"
            ),
        )
        await js.publish(
            subject_for("acquisition", env.type),
            env.SerializeToString(),
            headers={"Nats-Msg-Id": env.id},
        )
    finally:
        await nc.close()


async def test_dashboard_metrics_are_exported_by_the_running_services(
    platform_metrics: dict[str, dict[str, set[str]]], default: Rendered
) -> None:
    kit_series = platform_metrics["identity"]
    missing: list[str] = []
    unlisted: set[str] = set()
    for board_name, board in dashboards(default).items():
        for expr in queries(board):
            # Ours, and the HTTP server histogram FastAPI's own instrumentation exports.
            metrics = set(re.findall(r"\b(?:closedloop|http_server_request)_[a-z0-9_]+\b", expr))
            assert metrics, f"{board_name}: a query names no metric the services export: {expr}"
            exported: dict[str, set[str]] = {}
            for metric in metrics:
                owner = SERVICE_METRICS.get(metric)
                if owner is not None and owner not in platform_metrics:
                    unlisted.add(f"{metric} ({owner})")
                    continue
                series = platform_metrics[owner] if owner else kit_series
                if metric not in series:
                    missing.append(
                        f"{board_name}: {metric} is not exported by {owner or 'the kit'}"
                    )
                    continue
                exported[metric] = series[metric]
            if exported:
                for label in labels_used(expr):
                    if not any(label in keys for keys in exported.values()):
                        missing.append(f"{board_name}: no label {label!r} on {sorted(exported)}")
    assert missing == []
    if unlisted:
        # Checked once their service is in services.toml; named here so nobody forgets them.
        warnings.warn(
            "funnel metrics of services not yet in services.toml (not checked): "
            + ", ".join(sorted(unlisted)),
            stacklevel=1,
        )


def _schema_paths(schema: dict[str, Any], prefix: str = "") -> list[str]:
    """Every key the values schema defines, down to free-form maps; services as `<name>`."""
    paths = []
    for key, sub in schema.get("properties", {}).items():
        path = f"{prefix}.{key}" if prefix else key
        strict_children = sub.get("additionalProperties") is False and sub.get("properties")
        if strict_children and key not in ("resources", "probes"):
            paths += _schema_paths(sub, path)
        elif isinstance(sub.get("additionalProperties"), dict) and "properties" in sub.get(
            "additionalProperties", {}
        ):
            paths += _schema_paths(sub["additionalProperties"], f"{path}.<name>")
        else:
            paths.append(path)
    return paths


def test_chart_readme_documents_every_value() -> None:
    schema = yaml.safe_load((CHART / "values.schema.json").read_text())
    readme = (CHART / "README.md").read_text()
    defaults = set(schema["properties"]["defaults"]["properties"])
    undocumented = [
        path
        for path in _schema_paths(schema)
        if f"`{path}`" not in readme
        # services.<name>.<default key> is documented once, as defaults.<key>.
        and not (path.startswith("services.<name>.") and path.split(".")[2] in defaults)
    ]
    assert undocumented == []


def _selects(selector: dict[str, Any], labels: dict[str, str]) -> bool:
    """A Kubernetes label selector (matchLabels, matchExpressions In) against pod labels."""
    if "matchLabels" not in selector and "matchExpressions" not in selector:
        selector = {"matchLabels": selector}  # a Service's plain map
    if not selector.get("matchLabels", {}).items() <= labels.items():
        return False
    for expr in selector.get("matchExpressions", []):
        assert expr["operator"] == "In", expr
        if labels.get(expr["key"]) not in expr["values"]:
            return False
    return True


def test_services_select_only_their_own_serving_pods(rendered: Rendered) -> None:
    """A Service, PDB or NetworkPolicy never selects another service's pods or a Job's pod; the
    migration Jobs' and the test pod's NetworkPolicies select exactly those."""
    pods = _pod_templates(rendered)
    jobs = sorted(w for w, _ in pods if w.startswith("Job/"))
    expected = {
        "cl-closedloop-migrate": jobs,
        "cl-closedloop-test": ["Pod/cl-closedloop-test-grpc-health"],
    }
    for kind in ("Service", "PodDisruptionBudget", "NetworkPolicy"):
        for obj in rendered.of_kind(kind):
            spec = obj["spec"]
            selector = spec.get("selector", spec.get("podSelector", {}))
            chosen = sorted(w for w, labels in pods if _selects(selector, labels))
            name = obj["metadata"]["name"]
            assert chosen == expected.get(name, [f"Deployment/{name}"]), (kind, chosen)
    assert {"cl-closedloop-migrate", "cl-closedloop-test"} <= {
        p["metadata"]["name"] for p in rendered.of_kind("NetworkPolicy")
    }


def _pod_templates(rendered: Rendered) -> list[tuple[str, dict[str, str]]]:
    found = []
    for obj in rendered.objects:
        if obj["kind"] in ("Deployment", "Job"):
            labels = obj["spec"]["template"]["metadata"]["labels"]
            found.append((f"{obj['kind']}/{obj['metadata']['name']}", labels))
        elif obj["kind"] == "Pod":
            found.append((f"Pod/{obj['metadata']['name']}", obj["metadata"]["labels"]))
    return found


def test_chart_ports_match_every_service_package_spec() -> None:
    """Also for services not yet in services.toml: their SPEC is already in their package."""
    values = yaml.safe_load((CHART / "values.yaml").read_text())
    for name, entry in values["services"].items():
        spec = importlib.import_module(f"closedloop_{name}").SPEC
        assert (entry["grpcPort"], entry["httpPort"]) == (spec.grpc_port, spec.http_port), name


def test_worker_processes_are_one_value_per_service(default: Rendered) -> None:
    for deployment in default.of_kind("Deployment"):
        name = deployment["metadata"]["name"]
        assert default.named("ConfigMap", name)["data"]["CLOSEDLOOP_WORKERS"] == "1", name
    scaled = render(minimal({"services": {"identity": {"workers": 2}}}))
    assert scaled.named("ConfigMap", resource_name("identity"))["data"]["CLOSEDLOOP_WORKERS"] == "2"
    other = resource_name("acquisition")
    assert scaled.named("ConfigMap", other)["data"]["CLOSEDLOOP_WORKERS"] == "1"
    assert "workers" in refusal({"services": {"identity": {"workers": 0}}})


def test_database_pool_size_is_a_value_and_notes_sum_the_connections(
    default: Rendered, monkeypatch: pytest.MonkeyPatch
) -> None:
    """CLOSEDLOOP_DATABASE_POOL_SIZE beside CLOSEDLOOP_WORKERS, with the kit's default; NOTES add
    up replicas (maxReplicas when autoscaling) x workers x pool size over the services, and warn
    when the bundled PostgreSQL's default max_connections cannot hold them."""
    for deployment in default.of_kind("Deployment"):
        name = deployment["metadata"]["name"]
        data = default.named("ConfigMap", name)["data"]
        monkeypatch.setenv("CLOSEDLOOP_DATABASE_POOL_SIZE", data["CLOSEDLOOP_DATABASE_POOL_SIZE"])
        assert load_settings(GATEWAY_SPEC, GatewaySettings).database_pool_size == (
            GatewaySettings().database_pool_size
        ), name
    assert "  identity     1 x 1 x 20 = 20\n" in default.notes
    assert "  total        120, plus one per migration run" in default.notes
    assert "WARNING: the bundled PostgreSQL" not in default.notes  # an external database

    sized = render(
        minimal(
            {
                "services": {
                    "identity": {"workers": 2, "databasePoolSize": 8},
                    "referral": {"autoscaling": {"enabled": True, "maxReplicas": 3}},
                }
            }
        )
    )
    data = sized.named("ConfigMap", resource_name("identity"))["data"]
    assert (data["CLOSEDLOOP_WORKERS"], data["CLOSEDLOOP_DATABASE_POOL_SIZE"]) == ("2", "8")
    assert "  identity     1 x 2 x 8 = 16\n" in sized.notes
    assert "  referral     3 (maxReplicas) x 1 x 20 = 60\n" in sized.notes
    assert "  total        156, plus" in sized.notes  # 4 x 20 + 16 + 60

    bundled = minimal({"postgresql": {"enabled": True}})
    assert "WARNING: the bundled PostgreSQL" not in render(bundled).notes  # 120 of 300
    scaled = minimal({"postgresql": {"enabled": True}, "defaults": {"workers": 3}})  # 6 x 3 x 20
    assert "has max_connections 300 (3 reserved)" in render(scaled).notes
    assert "360 connections will not fit" in render(scaled).notes
    pg100 = {"enabled": True, "primary": {"extendedConfiguration": "max_connections = 100"}}
    assert "120 connections will not fit" in render(minimal({"postgresql": pg100})).notes
    small = minimal({"postgresql": pg100, "defaults": {"databasePoolSize": 16}})  # 6 x 16 = 96
    assert "WARNING: the bundled PostgreSQL" not in render(small).notes
    assert "databasePoolSize" in refusal({"services": {"identity": {"databasePoolSize": 0}}})


def test_gateway_send_settings_are_chart_values_with_the_gateways_defaults(
    default: Rendered, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The gateway's send slots and WeChat threads are values of the chart with the gateway's own
    defaults; the gateway reads what the chart renders; other services are not given them."""
    names = ("CLOSEDLOOP_GATEWAY_SEND_CONCURRENCY", "CLOSEDLOOP_GATEWAY_WECHAT_THREADS")
    gateway = default.named("ConfigMap", resource_name("gateway"))["data"]
    for key, value in gateway.items():
        monkeypatch.setenv(key, value)
    read = load_settings(GATEWAY_SPEC, GatewaySettings)
    assert isinstance(read, GatewaySettings)
    defaults = GatewaySettings()
    assert (read.send_concurrency, read.wechat_threads) == (
        defaults.send_concurrency,
        defaults.wechat_threads,
    )
    assert all(name in gateway for name in names)
    for deployment in default.of_kind("Deployment"):
        name = deployment["metadata"]["name"]
        if name != resource_name("gateway"):
            assert not set(names) & set(default.named("ConfigMap", name)["data"]), name

    raised = render(
        minimal({"services": {"gateway": {"sendConcurrency": 64, "wechatThreads": 48}}})
    )
    data = raised.named("ConfigMap", resource_name("gateway"))["data"]
    assert [data[name] for name in names] == ["64", "48"]
    assert "sendConcurrency" in refusal({"services": {"gateway": {"sendConcurrency": 0}}})
    assert "wechatThreads" in refusal({"services": {"gateway": {"wechatThreads": "many"}}})
    assert "is a setting of the gateway" in refusal(
        {"services": {"retention": {"sendConcurrency": 8}}}
    )
