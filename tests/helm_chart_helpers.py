"""Rendering the Helm chart offline, and reading what it renders, for tests/test_helm_chart.py.

Helm itself runs in-process through `helm-python-sdk` (the Helm v4 Go SDK as a shared library):
no helm binary, no cluster, no network.
"""

from __future__ import annotations

import copy
import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import helm_python as helm
import yaml
from sqlalchemy.orm import DeclarativeBase

from closedloop.events.v1.envelope_pb2 import Envelope
from loopkit.consumer import Subscription
from loopkit.runtime import ServiceDefinition, ServiceRuntime
from loopkit.settings import ServiceSpec
from loopkit.tables import kit_tables

ROOT = Path(__file__).resolve().parents[1]
CHART = ROOT / "deploy" / "helm" / "closedloop"
PRODUCTION_VALUES = CHART / "ci" / "production-values.yaml"
DOCKERFILE = ROOT / "deploy" / "docker" / "Dockerfile"
RELEASE = "cl"
NAMESPACE = "shop"
# The oldest Kubernetes the chart supports (Chart.yaml kubeVersion; gRPC probes are GA in 1.27)
# and a current one.
KUBE_VERSIONS = ("1.27.0", "1.33.0")
# Kinds of the Prometheus Operator (CRDs): no OpenAPI schema ships for them, so the tests check
# them structurally instead.
CRD_KINDS = {"ServiceMonitor"}
# Labels Prometheus attaches to every scraped series (target labels), not the services.
TARGET_LABELS = {"namespace", "container", "pod", "job", "instance", "service", "endpoint"}
# The funnel dashboard's metrics (per tenant, from retention's funnel read model) and their owner.
FUNNEL_METRICS = {
    "closedloop_funnel_customers": "retention",
    "closedloop_funnel_tenants_left_out": "retention",
}
# The gateway's business metrics (its own dashboard, dashboards/gateway.json).
GATEWAY_METRICS = {
    name: "gateway"
    for name in (
        "closedloop_gateway_sends_total",
        "closedloop_gateway_api_calls_total",
        "closedloop_gateway_quota_used_ratio",
        "closedloop_gateway_quota_paused",
        "closedloop_gateway_token_refreshes_total",
    )
}
# Metrics only one service exports, and that service; every other dashboard metric is the kit's.
SERVICE_METRICS = {**FUNNEL_METRICS, **GATEWAY_METRICS}


# The smallest install the chart accepts: the defaults plus what they cannot guess.
MINIMAL_VALUES: dict[str, Any] = yaml.safe_load((CHART / "ci" / "minimal-values.yaml").read_text())


def minimal(values: dict[str, Any]) -> dict[str, Any]:
    """`values` on top of the minimal install."""
    return {**copy.deepcopy(MINIMAL_VALUES), **values}


def production_values() -> dict[str, Any]:
    values: dict[str, Any] = yaml.safe_load(PRODUCTION_VALUES.read_text())
    return values


@dataclass(frozen=True)
class Rendered:
    """A chart render: the manifests by template path, and every object in them."""

    files: dict[str, str]

    @property
    def objects(self) -> list[dict[str, Any]]:
        found = []
        for path, text in sorted(self.files.items()):
            if not path.endswith(".yaml"):
                continue
            found += [doc for doc in yaml.safe_load_all(text) if doc]
        return found

    def of_kind(self, kind: str) -> list[dict[str, Any]]:
        return [o for o in self.objects if o["kind"] == kind]

    def named(self, kind: str, name: str) -> dict[str, Any]:
        matches = [o for o in self.of_kind(kind) if o["metadata"]["name"] == name]
        assert len(matches) == 1, f"{kind}/{name}: {len(matches)} rendered"
        return matches[0]

    @property
    def notes(self) -> str:
        return next(t for p, t in self.files.items() if p.endswith("NOTES.txt"))


def render(values: dict[str, Any] | None = None, *, is_upgrade: bool = False) -> Rendered:
    """The chart as `helm template` renders it; None: the minimal install (MINIMAL_VALUES)."""
    chart = helm.Chart.load(CHART)
    given = copy.deepcopy(MINIMAL_VALUES if values is None else values)
    files = chart.render(
        given, name=RELEASE, namespace=NAMESPACE, is_install=not is_upgrade, is_upgrade=is_upgrade
    )
    return Rendered(files)


def resource_name(service: str) -> str:
    return f"{RELEASE}-closedloop-{service}"


def pod_specs(rendered: Rendered) -> Iterator[tuple[str, dict[str, Any]]]:
    """(kind/name, pod spec) of every Deployment, Job and Pod."""
    for obj in rendered.objects:
        kind, name = obj["kind"], obj["metadata"]["name"]
        if kind in ("Deployment", "Job"):
            yield f"{kind}/{name}", obj["spec"]["template"]["spec"]
        elif kind == "Pod":
            yield f"{kind}/{name}", obj["spec"]


# --- dashboards and metrics ----------------------------------------------------------------

METRIC_NAME = re.compile(r"\bclosedloop_[a-z0-9_]+\b")
_BY = re.compile(r"\bby\s*\(([^)]*)\)")
_MATCHER = re.compile(r"([a-zA-Z_][a-zA-Z0-9_]*)\s*(?:=~|!~|!=|=)\s*\"")
_SAMPLE = re.compile(r"^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{([^}]*)\})?\s")
_LABEL_KEY = re.compile(r"([a-zA-Z_][a-zA-Z0-9_]*)=\"")


def dashboards(rendered: Rendered) -> dict[str, dict[str, Any]]:
    """Every dashboard JSON shipped as a ConfigMap for the Grafana sidecar, by file name."""
    found = {}
    for cm in rendered.of_kind("ConfigMap"):
        if cm["metadata"].get("labels", {}).get("grafana_dashboard") != "1":
            continue
        for key, text in cm["data"].items():
            found[key] = json.loads(text)
    return found


def queries(dashboard: dict[str, Any]) -> list[str]:
    """The PromQL of every panel target and templating query."""
    exprs = []
    for panel in dashboard.get("panels", []):
        exprs += [t["expr"] for t in panel.get("targets", []) if t.get("expr")]
    for var in dashboard.get("templating", {}).get("list", []):
        query = var.get("query")
        if isinstance(query, dict) and query.get("query"):
            exprs.append(query["query"])
    return exprs


def labels_used(expr: str) -> set[str]:
    """Series labels an expression groups or filters by (not Prometheus target labels)."""
    names: set[str] = set()
    for group in _BY.findall(expr):
        names |= {n.strip() for n in group.split(",") if n.strip()}
    names |= set(_MATCHER.findall(expr))
    return names - TARGET_LABELS - {"le"}


def scraped_series(exposition: str) -> dict[str, set[str]]:
    """Prometheus text exposition → {sample name: label keys seen on it}."""
    series: dict[str, set[str]] = {}
    for line in exposition.splitlines():
        if not line or line.startswith("#"):
            continue
        match = _SAMPLE.match(line)
        if match:
            keys = set(_LABEL_KEY.findall(match.group(2) or ""))
            series.setdefault(match.group(1), set()).update(keys)
    return series


# --- a consumer of identity's events, so the kit's consumer metrics appear -------------------


class _ProbeBase(DeclarativeBase):
    pass


_probe_kit = kit_tables(_ProbeBase.metadata)


async def _ignore(_session: object, _env: Envelope) -> None:
    return None


def _build_probe(runtime: ServiceRuntime) -> None:
    runtime.add_subscription(
        Subscription.to("identity", "helm-metrics", {"customer.created": _ignore})
    )


# Identity consumes nothing; until a stage service is listed, this stands in for one so the kit's
# consumer metrics (lag, outcomes, dead letters) are exported by the process being scraped.
METRICS_PROBE = ServiceDefinition(
    spec=ServiceSpec(name="helmprobe", grpc_port=0, http_port=0, module="helm_chart_helpers"),
    metadata=_ProbeBase.metadata,
    tables=_probe_kit,
    migrations_dir=Path("/nonexistent"),  # tables are created directly, see test
    build=_build_probe,
)
