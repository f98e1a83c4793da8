"""OpenTelemetry, when the app traces: an enqueue span, and the trace context kept with a job.

Nothing here loads OpenTelemetry. An app that traces has loaded it already (its spans come
from it); in one that does not, each call costs a dictionary lookup.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from contextlib import AbstractContextManager, nullcontext
from dataclasses import replace
from importlib.util import find_spec
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from producer.jobs import Job

is_available = find_spec("opentelemetry") is not None
"""Whether OpenTelemetry is installed at all: computed once, without importing it."""
ENQUEUE_SPAN = "zixflow_queue.enqueue"
TRACEPARENT = "traceparent"
_NOTHING: AbstractContextManager[Any] = nullcontext()


def _tracing() -> bool:
    """Whether a span is recording here: then jobs carry the trace on to the worker's send."""
    trace = sys.modules.get("opentelemetry.trace") if is_available else None
    return trace is not None and bool(trace.get_current_span().is_recording())


def enqueue_span(jobs: int) -> AbstractContextManager[Any]:
    """A span `zixflow_queue.enqueue` under the recording span; nothing without one."""
    if not _tracing():
        return _NOTHING
    from opentelemetry import trace  # noqa: PLC0415 - loaded already, see _tracing

    tracer = trace.get_tracer("zixflow_queue.producer")
    return tracer.start_as_current_span(ENQUEUE_SPAN, attributes={"zixflow_queue.jobs": jobs})


def traceparent() -> str | None:
    """The W3C traceparent of the recording span, or None."""
    if not _tracing():
        return None
    # W3C's own propagator, not the app's global one (which may speak B3 or Jaeger): the
    # worker extracts it with the same.
    from opentelemetry.trace.propagation.tracecontext import (  # noqa: PLC0415
        TraceContextTextMapPropagator,
    )

    carrier: dict[str, str] = {}
    TraceContextTextMapPropagator().inject(carrier)
    return carrier.get(TRACEPARENT)


def with_trace(jobs: Sequence[Job]) -> Sequence[Job]:
    """The jobs, each carrying the recording span's trace unless it has one of its own: for jobs
    stored later, by a call that other requests share."""
    trace = traceparent()
    if trace is None:
        return jobs
    return [job if job.trace else replace(job, trace=trace) for job in jobs]
