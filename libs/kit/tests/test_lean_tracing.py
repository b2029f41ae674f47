"""Without an exporter, spans are not recorded but their context still propagates as the SDK's."""

from opentelemetry import context as otel_context
from opentelemetry import propagate
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind

from loopkit.telemetry import LeanTracerProvider

TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"


def _child_of(traceparent: str, provider: LeanTracerProvider) -> object:
    parent = propagate.extract({"traceparent": traceparent})
    token = otel_context.attach(parent)
    try:
        return provider.get_tracer("t").start_span("call", kind=SpanKind.SERVER)
    finally:
        otel_context.detach(token)


def test_without_a_processor_spans_carry_a_sampled_context_but_record_nothing() -> None:
    provider = LeanTracerProvider()
    root = provider.get_tracer("t").start_span("call", kind=SpanKind.SERVER)
    assert not root.is_recording()
    ctx = root.get_span_context()
    assert ctx.is_valid and ctx.trace_flags.sampled

    sampled = _child_of(f"00-{TRACE_ID}-00f067aa0ba902b7-01", provider)
    unsampled = _child_of(f"00-{TRACE_ID}-00f067aa0ba902b7-00", provider)
    for span, flag in ((sampled, True), (unsampled, False)):
        ctx = span.get_span_context()  # type: ignore[attr-defined]
        assert format(ctx.trace_id, "032x") == TRACE_ID
        assert ctx.span_id != 0x00F067AA0BA902B7
        assert ctx.trace_flags.sampled is flag


def test_spans_are_recorded_again_once_a_processor_listens() -> None:
    provider = LeanTracerProvider()
    tracer = provider.get_tracer("t")
    exporter = InMemorySpanExporter()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    with tracer.start_as_current_span("call") as span:
        assert span.is_recording()
    assert [s.name for s in exporter.get_finished_spans()] == ["call"]
