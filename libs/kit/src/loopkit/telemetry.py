"""OpenTelemetry setup: traces (OTLP when configured) and metrics (Prometheus always)."""

from __future__ import annotations

import functools
import os

from opentelemetry import metrics, trace
from opentelemetry.exporter.prometheus import PrometheusMetricReader
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor


@functools.cache
def configure_telemetry(service: str) -> None:
    """Install providers once per process. `OTEL_*` env vars tune exporters and sampling;
    `OTEL_EXPORTER_OTLP_ENDPOINT` turns on OTLP trace export."""
    if isinstance(trace.get_tracer_provider(), TracerProvider):
        return  # already set up (several services in one test process)
    resource = Resource.create(
        {
            "service.name": os.environ.get("OTEL_SERVICE_NAME", service),
            "service.namespace": "closedloop",
        }
    )
    tracer_provider = TracerProvider(resource=resource)
    if os.environ.get("OTEL_EXPORTER_OTLP_ENDPOINT") or os.environ.get(
        "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"
    ):
        from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter

        tracer_provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
    trace.set_tracer_provider(tracer_provider)
    # The Prometheus reader registers with prometheus_client's default registry, which the ops
    # HTTP endpoint serves at /metrics.
    metrics.set_meter_provider(
        MeterProvider(resource=resource, metric_readers=[PrometheusMetricReader()])
    )
