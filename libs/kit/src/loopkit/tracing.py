"""W3C trace context across process boundaries (gRPC metadata, NATS message headers)."""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager

from opentelemetry import context as otel_context
from opentelemetry import propagate, trace
from opentelemetry.trace import Link, Span, SpanKind


def current_context_headers() -> dict[str, str]:
    carrier: dict[str, str] = {}
    propagate.inject(carrier)
    return carrier


def trace_id_hex(span: Span | None = None) -> str:
    ctx = (span or trace.get_current_span()).get_span_context()
    return format(ctx.trace_id, "032x") if ctx.is_valid else ""


# A proxy until the process installs its provider (loopkit.telemetry), then that provider's tracer:
# looked up once, not per span (get_tracer builds a new Tracer on every call).
_tracer = trace.get_tracer("loopkit")


def _carries_context(headers: Mapping[str, str]) -> bool:
    """Whether `headers` hold any field the configured propagators read (traceparent, baggage...).
    Without one, extracting gives back the current context: nothing to extract or attach."""
    return any(name in headers for name in propagate.get_global_textmap().fields)


@contextmanager
def span_from_headers(
    name: str,
    headers: Mapping[str, str] | None,
    *,
    kind: SpanKind,
    attributes: dict[str, str],
    linked: Sequence[Mapping[str, str] | None] = (),
) -> Iterator[Span]:
    """A span continuing the trace whose context came in `headers`, with a link to each trace
    context in `linked` (the other messages of a batch handled in this one span)."""
    links = []
    for other in linked:
        if other and "traceparent" in other:
            context = trace.get_current_span(propagate.extract(other)).get_span_context()
            if context.is_valid:
                links.append(Link(context))
    if not headers or not _carries_context(headers):
        with _tracer.start_as_current_span(
            name, kind=kind, attributes=attributes, links=links
        ) as span:
            yield span
        return
    token = otel_context.attach(propagate.extract(dict(headers)))
    try:
        with _tracer.start_as_current_span(
            name, kind=kind, attributes=attributes, links=links
        ) as span:
            yield span
    finally:
        otel_context.detach(token)
