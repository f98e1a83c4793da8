"""The send span: a child of the span that enqueued the job, when its request was traced."""

from __future__ import annotations

from collections.abc import Awaitable

from producer.tracing import TRACEPARENT, is_available
from worker.outcomes import Outcome, OutcomeKind

SEND_SPAN = "zixflow_queue.send"


async def traced_send(send: Awaitable[Outcome], job_id: str, attempt: int, trace: str) -> Outcome:
    """Await the send inside a span whose parent is `trace` (a W3C traceparent)."""
    if not is_available:
        return await send
    from opentelemetry import trace as otel  # noqa: PLC0415 - optional, and only for traced jobs
    from opentelemetry.trace.propagation.tracecontext import (  # noqa: PLC0415
        TraceContextTextMapPropagator,
    )

    parent = TraceContextTextMapPropagator().extract({TRACEPARENT: trace})
    tracer = otel.get_tracer("zixflow_queue.worker")
    attributes: dict[str, str | int] = {"zixflow_queue.job_id": job_id,
                                        "zixflow_queue.attempt": attempt}  # fmt: skip
    with tracer.start_as_current_span(
        SEND_SPAN, context=parent, kind=otel.SpanKind.CLIENT, attributes=attributes
    ) as span:
        outcome = await send
        span.set_attribute("zixflow_queue.outcome", outcome.kind.value)
        if outcome.status_code is not None:
            span.set_attribute("http.response.status_code", outcome.status_code)
        if outcome.kind is not OutcomeKind.SENT:
            span.set_status(otel.Status(otel.StatusCode.ERROR, outcome.reason))
    return outcome
