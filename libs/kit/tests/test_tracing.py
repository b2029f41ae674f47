"""One trace across the event hop: the producer's span → outbox → NATS headers → consumer span."""

from __future__ import annotations

from nats.js import JetStreamContext
from opentelemetry import trace
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind
from sqlalchemy.ext.asyncio import AsyncSession

from closedloop.events.v1.envelope_pb2 import Envelope
from closedloop.events.v1.identity_events_pb2 import CustomerCreated
from kit_testbed import EVENT_TYPE, KIT, Database, Stream, applied_counts, record_applied
from loopkit.consumer import EventConsumer, Subscription
from loopkit.events import Outbox
from loopkit.outbox import OutboxRelay
from loopkit_dev.testing import eventually


async def test_consumer_span_continues_the_trace_of_the_emitting_request(
    database: Database, stream: Stream, js: JetStreamContext, span_exporter: InMemorySpanExporter
) -> None:
    tracer = trace.get_tracer("loopkit-tests")
    with tracer.start_as_current_span("resolve customer") as request_span:
        async with database.sessions() as session, session.begin():
            env = await Outbox(KIT, stream.producer).emit(
                session,
                EVENT_TYPE,
                tenant_id="t-trace",
                customer_id="c-trace",
                payload=CustomerCreated(customer_id="c-trace"),
            )
    request = request_span.get_span_context()
    trace_id = format(request.trace_id, "032x")

    await OutboxRelay(database.sessions, KIT, js).flush()
    raw = await js.get_last_msg(stream.name, f"{stream.subjects[:-1]}{EVENT_TYPE}")
    assert raw.headers is not None
    assert raw.headers["Nats-Msg-Id"] == env.id
    version, header_trace, parent_span, _flags = raw.headers["traceparent"].split("-")
    assert (version, header_trace) == ("00", trace_id)
    assert parent_span == format(request.span_id, "016x")

    seen_in_handler: list[int] = []

    async def handler(session: AsyncSession, envelope: Envelope) -> None:
        seen_in_handler.append(trace.get_current_span().get_span_context().trace_id)
        await record_applied(session, envelope)

    consumer = EventConsumer(
        f"svc{stream.producer}",
        Subscription("tracer", stream.name, [stream.subjects], {EVENT_TYPE: handler}),
        database.sessions,
        KIT,
        js,
    )
    await consumer.start()

    async def applied() -> bool:
        await consumer.poll(timeout_s=0.2)
        return env.id in await applied_counts(database.sessions)

    await eventually(applied)
    assert seen_in_handler == [request.trace_id]
    consumed = [
        s
        for s in span_exporter.get_finished_spans()
        if s.attributes and s.attributes.get("messaging.message.id") == env.id
    ]
    assert len(consumed) == 1
    span = consumed[0]
    assert span.name == f"consume {EVENT_TYPE}"
    assert span.kind == SpanKind.CONSUMER
    assert span.context.trace_id == request.trace_id
    assert span.parent is not None
    assert span.parent.span_id == request.span_id


async def test_http_edges_continue_the_callers_trace_and_are_measured_by_route(
    span_exporter: InMemorySpanExporter,
) -> None:
    import httpx
    from fastapi import APIRouter

    from loopkit.ops_http import ops_app

    async def ready() -> None:
        return None

    app = ops_app("kit-test", ready)
    router = APIRouter()

    @router.get("/r/{code}")
    async def visit(code: str) -> dict[str, str]:
        return {"code": code}

    app.include_router(router)
    trace_id = "4bf92f3577b34da6a3ce929d0e0e4736"
    headers = {"traceparent": f"00-{trace_id}-00f067aa0ba902b7-01"}
    span_exporter.clear()
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as c:
        assert (await c.get("/r/abc123", headers=headers)).status_code == 200
        assert (await c.get("/healthz", headers=headers)).status_code == 200
        metrics_text = (await c.get("/metrics")).text

    in_trace = [
        s
        for s in span_exporter.get_finished_spans()
        if s.kind == SpanKind.SERVER and format(s.context.trace_id, "032x") == trace_id
    ]
    assert "GET /r/{code}" in [s.name for s in in_trace]
    # FastAPI's own instrumentation gives both (the kit relies on it): labelled by the route
    # template, so codes never explode the metric's cardinality.
    assert "http_server_request_duration_seconds_count{" in metrics_text
    assert 'http_route="/r/{code}"' in metrics_text
    assert "abc123" not in metrics_text


async def test_a_lean_route_is_answered_before_fastapi_and_still_traced_and_measured(
    span_exporter: InMemorySpanExporter,
) -> None:
    """A `LeanRoute` is answered by the edge middleware (the FastAPI route of the same path, kept
    for the OpenAPI document, never runs), keeps the caller's trace, is measured by its route
    template, and its domain errors and bugs get the edges' answers."""
    import httpx
    from fastapi import APIRouter, Request
    from fastapi.responses import JSONResponse, Response

    from loopkit.errors import InvalidArgument
    from loopkit.http_edge import LeanRoute
    from loopkit.ops_http import ops_app

    async def ready() -> None:
        return None

    async def lean(request: Request, code: str) -> Response:
        if code == "bad":
            raise InvalidArgument("not a code", field="code")
        if code == "bug":
            raise RuntimeError("secret internals")
        return JSONResponse({"lean": code, "tenant": request.headers.get("x-tenant-id")})

    app = ops_app("kit-test", ready, [LeanRoute("POST", "/lean/{code}", lean)])
    router = APIRouter()

    @router.post("/lean/{code}")
    async def routed(code: str) -> dict[str, str]:
        return {"routed": code}

    @router.get("/lean/{code}")
    async def read(code: str) -> dict[str, str]:
        return {"read": code}

    app.include_router(router)
    assert "/lean/{code}" in app.openapi()["paths"]
    trace_id = "5bf92f3577b34da6a3ce929d0e0e4736"
    headers = {"traceparent": f"00-{trace_id}-00f067aa0ba902b7-01", "x-tenant-id": "t-1"}
    span_exporter.clear()
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as c:
        answer = await c.post("/lean/xyz789", headers=headers)
        bad = await c.post("/lean/bad")
        bug = await c.post("/lean/bug")
        other_method = await c.get("/lean/abc")  # not lean: FastAPI's route
        metrics_text = (await c.get("/metrics")).text
    assert answer.json() == {"lean": "xyz789", "tenant": "t-1"}
    assert bad.status_code == 400 and bad.json() == {"error": "not a code", "field": "code"}
    assert bug.status_code == 500 and "secret" not in bug.text
    assert other_method.json() == {"read": "abc"}
    in_trace = [
        s
        for s in span_exporter.get_finished_spans()
        if s.kind == SpanKind.SERVER and format(s.context.trace_id, "032x") == trace_id
    ]
    assert [s.name for s in in_trace] == ["POST /lean/{code}"]
    assert 'http_route="/lean/{code}"' in metrics_text
    assert "xyz789" not in metrics_text
