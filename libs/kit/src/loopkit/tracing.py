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
    parent = propagate.extract(dict(headers or {}))
    links = []
    for other in linked:
        if other and "traceparent" in other:
            context = trace.get_current_span(propagate.extract(other)).get_span_context()
            if context.is_valid:
                links.append(Link(context))
    token = otel_context.attach(parent)
    try:
        tracer = trace.get_tracer("loopkit")
        with tracer.start_as_current_span(
            name, kind=kind, attributes=attributes, links=links
        ) as span:
            yield span
    finally:
        otel_context.detach(token)
