"""Traces: one trace from the request that enqueues a job to the worker's send of it."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from collections.abc import Iterator

import httpx2
import pytest
import redis.asyncio
from opentelemetry import trace
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.util._once import Once
from pydantic import SecretStr

from producer import Producer
from producer.store import Store, connection_options
from tests.support import SANDBOX_KEY, wire_message
from worker.delivery import Courier
from worker.jobs import JobRecords, Wakeups
from worker.limiter import AdaptiveLimit
from worker.settings import WorkerSettings
from worker.zixflow import ZixflowClient, open_session
from zixflow_queue.sandbox import Sandbox
from zixflow_queue.service.app import create_app
from zixflow_queue.service.settings import ServiceSettings

TOKEN = "tracing-token-2b7d"


@pytest.fixture
def spans() -> Iterator[InMemorySpanExporter]:
    """What an SDK tracer provider records, as this test's global provider."""
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    trace.set_tracer_provider(provider)
    yield exporter
    provider.shutdown()
    # As OpenTelemetry's own tests do: the global provider may otherwise be set once a process.
    trace._TRACER_PROVIDER_SET_ONCE = Once()
    trace._TRACER_PROVIDER = None


@pytest.fixture
def settings(redis_url: str, sandbox: Sandbox) -> WorkerSettings:
    return WorkerSettings(redis_url=redis_url, queue="zq-tracing", api_key=SANDBOX_KEY,
                          base_url=sandbox.url, recipient_interval=0)  # fmt: skip


async def deliver(settings: WorkerSettings) -> None:
    """What a worker's delivery task does: take the ready jobs and send them, in-process."""
    records = redis.asyncio.Redis.from_url(settings.redis_url, **connection_options(5))
    zixflow = ZixflowClient(open_session(2), base_url=settings.base_url, api_key=SANDBOX_KEY,
                            connect_timeout=2, read_timeout=10)  # fmt: skip
    jobs = JobRecords(records, settings, "tracing:1", Wakeups(settings, None))
    courier = Courier(jobs, zixflow, AdaptiveLimit(2, 2), settings)
    try:
        await courier.deliver()
    finally:
        await courier.close()
        await records.aclose()


def named(exporter: InMemorySpanExporter, name: str) -> list[ReadableSpan]:
    return [span for span in exporter.get_finished_spans() if span.name == name]


def test_the_send_joins_the_trace_of_the_request_that_enqueued(
    spans: InMemorySpanExporter, settings: WorkerSettings
) -> None:
    producer = Producer(settings, Store.connect(settings))
    with trace.get_tracer("a web app").start_as_current_span("POST /orders/42") as request:
        job_id = producer.enqueue(wire_message())

    asyncio.run(deliver(settings))

    (enqueue,) = named(spans, "zixflow_queue.enqueue")
    (send,) = named(spans, "zixflow_queue.send")
    trace_id = request.get_span_context().trace_id
    assert enqueue.context is not None and send.context is not None
    assert enqueue.context.trace_id == send.context.trace_id == trace_id
    assert enqueue.parent is not None and send.parent is not None
    assert enqueue.parent.span_id == request.get_span_context().span_id
    assert send.parent.span_id == enqueue.context.span_id
    assert send.parent.is_remote  # carried through Redis, not through memory
    assert dict(send.attributes or {}) == {
        "zixflow_queue.job_id": job_id,
        "zixflow_queue.attempt": 1,
        "zixflow_queue.outcome": "sent",
        "http.response.status_code": 200,
    }


def test_requests_stored_together_keep_a_trace_each(
    spans: InMemorySpanExporter, settings: WorkerSettings, redis_url: str
) -> None:
    """The service stores requests of one event-loop turn with one call: each job still
    carries its own request's trace."""
    service = ServiceSettings(redis_url=redis_url, queue=settings.queue,
                              api_tokens=(SecretStr(TOKEN),))  # fmt: skip
    app = create_app(service)

    async def post_two() -> list[int]:
        transport = httpx2.ASGITransport(app=app)
        async with (
            app.router.lifespan_context(app),
            httpx2.AsyncClient(transport=transport, base_url="http://service") as client,
        ):
            answers = await asyncio.gather(*(
                client.post("/v1/messages", json={"message": wire_message(to=to)},
                            headers={"Authorization": f"Bearer {TOKEN}"})
                for to in ("919800000001", "919800000002")
            ))  # fmt: skip
        return [answer.status_code for answer in answers]

    assert asyncio.run(post_two()) == [202, 202]
    asyncio.run(deliver(settings))

    server = [span for span in spans.get_finished_spans()
              if span.kind is trace.SpanKind.SERVER and span.attributes
              and span.attributes.get("http.request.method") == "POST"]  # fmt: skip
    sends = named(spans, "zixflow_queue.send")
    assert len(named(spans, "zixflow_queue.enqueue")) == 1  # both stored by one call
    request_traces = {span.context.trace_id for span in server if span.context}
    assert len(request_traces) == 2
    assert {span.context.trace_id for span in sends if span.context} == request_traces


def test_without_a_recording_span_nothing_is_traced(
    spans: InMemorySpanExporter, settings: WorkerSettings, redis_url: str
) -> None:
    producer = Producer(settings, Store.connect(settings))
    job_id = producer.enqueue(wire_message())
    asyncio.run(deliver(settings))
    status = producer.get_status(job_id)
    assert status is not None and status.state == "sent"
    assert producer.store.records.hget(producer.keys.job(job_id), "trace") is None
    assert spans.get_finished_spans() == ()


def test_an_app_that_does_not_trace_loads_no_opentelemetry_to_enqueue(redis_url: str) -> None:
    """(redis-py loads some of it itself when the SDK is installed: the probe counts past that.)"""
    code = (
        "import json, sys, producer\n"
        "from producer.settings import ProducerSettings\n"
        "from producer.store import Store\n"
        "settings = ProducerSettings(redis_url=sys.argv[1], queue='zq-tracing')\n"
        "before = set(sys.modules)\n"
        "producer.Producer(settings, Store.connect(settings)).enqueue(json.loads(sys.argv[2]))\n"
        "print(sorted(m for m in set(sys.modules) - before if m.startswith('opentelemetry')))\n"
    )
    probe = [sys.executable, "-c", code, redis_url, json.dumps(wire_message())]
    assert subprocess.run(probe, capture_output=True, text=True, check=True).stdout == "[]\n"
