"""Each measurement of the pipeline, as a function returning messages (or jobs) per second."""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from producer import Producer
from producer.message import parse_message
from producer.settings import ProducerSettings
from producer.status import JobStatus
from producer.store import Store
from zixflow_queue.namespace import remove_deployment

BATCH = 1000


def sample_messages(count: int, first: int = 0, phones: int = 100) -> list[dict[str, Any]]:
    """Distinct messages: one recipient each, spread over `phones` sending phone ids."""
    return [
        {
            "to": f"91{9_000_000_000 + first + n}",
            "phoneId": f"1000{n % phones:03d}",
            "interactive": {
                "body": {"text": f"Order #{n}: confirm delivery tomorrow between 9 and 12?"},
                "action": {"buttons": [
                    {"type": "reply", "reply": {"id": f"yes-{n}", "title": "Yes"}},
                    {"type": "reply", "reply": {"id": f"no-{n}", "title": "No"}},
                ]},
            },
        }
        for n in range(count)
    ]  # fmt: skip


def wire_bodies(messages: Sequence[dict[str, Any]]) -> list[bytes]:
    """The request bodies a worker would send for these messages."""
    return [parse_message(message).to_wire_json().encode() for message in messages]


def _rate(count: int, run: Callable[[], object]) -> float:
    started = time.perf_counter()
    run()
    return count / (time.perf_counter() - started)


def enqueue_rates(
    redis_url: str, queue: str, messages: list[dict[str, Any]]
) -> tuple[float, float]:
    """Jobs/s for `enqueue` in a loop and for `enqueue_many` in batches of 1,000, on `queue`."""
    settings = ProducerSettings(redis_url=redis_url, queue=queue, prefix=f"zq:{queue}")
    producer = Producer(settings, Store.connect(settings))
    try:
        one = _rate(len(messages), lambda: [producer.enqueue(m) for m in messages])
        batches = [messages[start : start + BATCH] for start in range(0, len(messages), BATCH)]
        many = _rate(len(messages), lambda: [producer.enqueue_many(b) for b in batches])
    finally:
        remove_deployment(producer.store, settings)
    return one, many


def bulk_rate(producer: Producer, messages: list[dict[str, Any]], timeout: float) -> float:
    """Messages/s from the first `enqueue_many` (batches of 1,000) to the last `sent` record."""
    before, started = _finished(producer), time.time()
    job_ids = [job_id for start in range(0, len(messages), BATCH)
               for job_id in producer.enqueue_many(messages[start : start + BATCH])]  # fmt: skip
    return _sent_rate(producer, job_ids, started, before, timeout)


def singles_rate(
    producer: Producer, messages: list[dict[str, Any]], threads: int, timeout: float
) -> float:
    """Messages/s when `threads` threads each call `enqueue` once per message, as web apps do."""
    before, started = _finished(producer), time.time()
    with ThreadPoolExecutor(threads) as pool:
        job_ids = list(pool.map(producer.enqueue, messages))
    return _sent_rate(producer, job_ids, started, before, timeout)


def added_latency(
    producer: Producer, messages: list[dict[str, Any]], per_second: float, timeout: float
) -> tuple[float, float]:
    """p50 and p99 milliseconds from `enqueue` to `sent`, enqueuing at a steady pace."""
    job_ids = []
    before, started = _finished(producer), time.monotonic()
    for index, message in enumerate(messages):
        time.sleep(max(0.0, started + index / per_second - time.monotonic()))  # the pace
        job_ids.append(producer.enqueue(message))
    statuses = _all_sent(producer, job_ids, before, timeout)
    waits = [_seconds(status.sent_at) - _seconds(status.created_at) for status in statuses]
    cuts = statistics.quantiles(waits, n=100, method="inclusive")
    return cuts[49] * 1000, cuts[98] * 1000


def _sent_rate(
    producer: Producer, job_ids: list[str], started: float, before: int, timeout: float
) -> float:
    statuses = _all_sent(producer, job_ids, before, timeout)
    return len(job_ids) / (max(_seconds(status.sent_at) for status in statuses) - started)


def _finished(producer: Producer) -> int:
    """Jobs of the deployment sent or failed so far, from its counters (one cheap read)."""
    counts = producer.store.records.hmget(producer.keys.stats, "sent", "failed")
    return sum(int(count or 0) for count in counts)


def _all_sent(
    producer: Producer, job_ids: list[str], before: int, timeout: float
) -> list[JobStatus]:
    """Wait (on the counters) until the jobs are finished; fail past the deadline or if any
    was not sent."""
    deadline = time.monotonic() + timeout
    while _finished(producer) - before < len(job_ids):
        if time.monotonic() > deadline:
            raise RuntimeError("the pipeline did not deliver every message in time")
        time.sleep(0.05)
    statuses = [status for status in producer.get_statuses(job_ids) if status is not None]
    failed = [status for status in statuses if status.state != "sent"]
    if failed:
        raise RuntimeError(f"{len(failed)} message(s) not sent, e.g. {failed[0].error}")
    return statuses


def _seconds(moment: Any) -> float:
    return float(moment.timestamp())
