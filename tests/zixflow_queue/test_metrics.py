"""GET /metrics: the deployment's numbers as Prometheus families, from one snapshot a scrape."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace

import pytest
from fastapi.testclient import TestClient
from prometheus_client.metrics_core import Metric
from prometheus_client.parser import text_string_to_metric_families
from pydantic import SecretStr

from producer import Producer
from tests.support import WorkerProcess, all_final, wait_until, wire_messages
from zixflow_queue.sandbox import FaultPlan, Sandbox
from zixflow_queue.service.app import create_app
from zixflow_queue.service.settings import ServiceSettings
from zixflow_queue.stats import Histogram, Snapshot
from zixflow_queue.stats.prometheus import SnapshotCollector

TOKEN = "metrics-token-3e8a1f"
INF = float("inf")
QUIET = Snapshot(
    at=1_000.0, counters={}, waiting=0, queue_items=0, scheduled=0, in_flight=0, workers=0,
    dead_letters=0, events_pending=0, events_failed=0, deferrals={},
    send_seconds=Histogram({0.05: 0, 1.0: 0, INF: 0}), latency_seconds=Histogram({1.0: 0, INF: 0}),
    oldest_waiting_seconds=None,
)  # fmt: skip


def families(text: str) -> dict[str, Metric]:
    """An exposition, parsed by Prometheus's own parser: families by name."""
    return {family.name: family for family in text_string_to_metric_families(text)}


def exposed(snapshot: Snapshot) -> dict[str, Metric]:
    """What the collector exposes for a snapshot, through the text format."""
    from prometheus_client.exposition import generate_latest  # noqa: PLC0415

    return families(generate_latest(SnapshotCollector(snapshot)).decode())


def value(family: Metric, sample: str = "", **labels: str) -> float:
    """The one sample of a family with this name suffix and these labels."""
    (found,) = [s.value for s in family.samples
                if s.name == family.name + sample and s.labels == labels]  # fmt: skip
    return found


def test_the_contract_s_metrics_are_there_with_their_types() -> None:
    metrics = exposed(QUIET)
    assert metrics["zixflow_queue_messages"].type == "counter"
    for outcome in ("sent", "failed", "canceled"):  # 0 before any, so that rates start at once
        assert value(metrics["zixflow_queue_messages"], "_total", outcome=outcome) == 0
    for gauge in ("waiting", "scheduled", "dead_letters"):
        assert metrics[f"zixflow_queue_{gauge}"].type == "gauge"
    assert metrics["zixflow_queue_send_duration_seconds"].type == "histogram"
    assert value(metrics["zixflow_queue_oldest_waiting_seconds"]) == 0


def test_counters_gauges_and_labels_follow_the_snapshot() -> None:
    snapshot = replace(
        QUIET,
        counters={"sent": 7, "failed": 2, "canceled": 1, "retry": 4, "duplicates": 1,
                  "reclaims": 3, "attempt:sent": 7, "attempt:throttled": 4,
                  "events:delivered": 5, "inbound:matched": 2},
        waiting=11, queue_items=2, scheduled=5, in_flight=6, workers=3, dead_letters=2,
        events_pending=1, events_failed=1, deferrals={"1234567890": 9},
        oldest_waiting_seconds=12.5,
    )  # fmt: skip
    metrics = exposed(snapshot)
    assert value(metrics["zixflow_queue_messages"], "_total", outcome="failed") == 2
    assert value(metrics["zixflow_queue_attempts"], "_total", outcome="throttled") == 4
    assert value(metrics["zixflow_queue_retries"], "_total") == 4
    assert value(metrics["zixflow_queue_reclaims"], "_total") == 3
    assert value(metrics["zixflow_queue_events"], "_total", outcome="delivered") == 5
    assert value(metrics["zixflow_queue_events"], "_total", outcome="failed") == 0
    assert value(metrics["zixflow_queue_replies"], "_total", outcome="matched") == 2
    assert value(metrics["zixflow_queue_deferrals"], "_total", phone_id="1234567890") == 9
    gauges = {"waiting": 11, "queue_items": 2, "scheduled": 5, "in_flight": 6, "workers": 3,
              "dead_letters": 2, "events_pending": 1, "events_failed": 1,
              "oldest_waiting_seconds": 12.5}  # fmt: skip
    assert {name: value(metrics[f"zixflow_queue_{name}"]) for name in gauges} == gauges


def test_histograms_are_cumulative_with_the_count_in_inf() -> None:
    """The snapshot counts per bucket; Prometheus wants each bucket to hold all below it."""
    send = Histogram({0.05: 1, 1.0: 2, INF: 1}, total=4.25, count=4)
    metrics = exposed(replace(QUIET, send_seconds=send))
    family = metrics["zixflow_queue_send_duration_seconds"]
    assert [value(family, "_bucket", le=le) for le in ("0.05", "1.0", "+Inf")] == [1, 3, 4]
    assert (value(family, "_count"), value(family, "_sum")) == (4, 4.25)


@pytest.mark.integration
def test_a_scrape_counts_what_real_workers_sent(
    redis_url: str,
    pipeline_env: dict[str, str],
    start_worker: Callable[..., WorkerProcess],
    producer_for: Callable[..., Producer],
    sandbox: Sandbox,
) -> None:
    sandbox.configure(FaultPlan(script={"919800000003": ["window"]}))
    producer = producer_for()
    start_worker()
    start_worker()
    job_ids = producer.enqueue_many(wire_messages(4))
    wait_until(lambda: all_final(producer, job_ids), what="the jobs to finish")
    settings = ServiceSettings(redis_url=redis_url, queue=pipeline_env["ZQ_QUEUE"],
                               api_tokens=(SecretStr(TOKEN),))  # fmt: skip

    with TestClient(create_app(settings)) as client:
        assert client.get("/metrics").status_code == 401
        answer = client.get("/metrics", headers={"Authorization": f"Bearer {TOKEN}"})

    assert answer.status_code == 200
    assert answer.headers["content-type"].startswith("text/plain")
    metrics = families(answer.text)
    messages = metrics["zixflow_queue_messages"]
    assert [value(messages, "_total", outcome=o) for o in ("sent", "failed", "canceled")] == [
        3, 1, 0,
    ]  # fmt: skip
    attempts = metrics["zixflow_queue_attempts"]
    assert value(attempts, "_total", outcome="sent") == 3
    assert value(attempts, "_total", outcome="permanent") == 1
    assert value(metrics["zixflow_queue_send_duration_seconds"], "_count") == 4
    assert value(metrics["zixflow_queue_latency_seconds"], "_count") == 3
    assert value(metrics["zixflow_queue_workers"]) == 2
    assert value(metrics["zixflow_queue_dead_letters"]) == 1
    assert value(metrics["zixflow_queue_waiting"]) == 0


def test_openmetrics_for_a_scraper_that_asks(redis_url: str) -> None:
    settings = ServiceSettings(redis_url=redis_url, api_tokens=(SecretStr(TOKEN),))
    headers = {"Authorization": f"Bearer {TOKEN}", "Accept": "application/openmetrics-text"}
    with TestClient(create_app(settings)) as client:
        answer = client.get("/metrics", headers=headers)
    assert answer.headers["content-type"].startswith("application/openmetrics-text")
    assert answer.text.endswith("# EOF\n")
    assert 'zixflow_queue_messages_total{outcome="sent"} 0' in answer.text
