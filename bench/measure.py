"""Each measurement the benchmark makes, as a function returning messages (or jobs) per second."""

from __future__ import annotations

import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import requests
from requests.adapters import HTTPAdapter

from producer import Producer
from producer.message import parse_message
from producer.settings import ProducerSettings
from producer.store import Store
from worker.zixflow import SEND_PATH
from zixflow_queue.namespace import remove_deployment


def sample_messages(count: int, first: int = 0, phones: int = 8) -> list[dict[str, Any]]:
    """Distinct messages: one recipient each, spread over a few sending phone ids."""
    return [
        {
            "to": f"91{9_000_000_000 + first + n}",
            "phoneId": f"10000{n % phones}",
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


def _rate(count: int, run: Callable[[], object]) -> float:
    started = time.perf_counter()
    run()
    return count / (time.perf_counter() - started)


def raw_client_rate(url: str, key: str, messages: list[dict[str, Any]], threads: int) -> float:
    """A hand-written client, no queue: one requests.Session posting validated payloads.

    At its best: one prepared request copied per send, keep-alive, no environment lookups.
    """
    bodies = [parse_message(message).to_wire_json().encode() for message in messages]
    session = requests.Session()
    session.trust_env = False
    session.mount("http://", HTTPAdapter(pool_connections=threads, pool_maxsize=threads))
    headers = {"Authorization": f"Bearer {key}", "Content-Type": "application/json"}
    template = session.prepare_request(requests.Request("POST", url + SEND_PATH, headers))

    def post(body: bytes) -> None:
        request = template.copy()
        request.prepare_body(body, None)
        answer = session.send(request, timeout=30)
        assert answer.status_code == 200 and answer.json()["status"] is True, answer.text

    with session:
        if threads == 1:
            return _rate(len(bodies), lambda: list(map(post, bodies)))
        with ThreadPoolExecutor(threads) as pool:
            return _rate(len(bodies), lambda: list(pool.map(post, bodies)))


def enqueue_rates(
    redis_url: str, queue: str, messages: list[dict[str, Any]]
) -> tuple[float, float]:
    """Jobs/s for `enqueue` in a loop and for `enqueue_many` in batches of 1,000, on `queue`."""
    settings = ProducerSettings(redis_url=redis_url, queue=queue, prefix=f"zq:{queue}")
    producer = Producer(settings, Store.connect(settings))
    try:
        one = _rate(len(messages), lambda: [producer.enqueue(m) for m in messages])
        batches = [messages[start : start + 1000] for start in range(0, len(messages), 1000)]
        many = _rate(len(messages), lambda: [producer.enqueue_many(b) for b in batches])
    finally:
        remove_deployment(producer.store, settings)
    return one, many


def pipeline_rate(producer: Producer, messages: list[dict[str, Any]], timeout: float) -> float:
    """Messages/s from the first enqueue to the last job's `sent` record."""
    records, stats = producer.store.records, producer.keys.stats
    before = int(records.hget(stats, "sent") or 0)
    started = time.time()
    job_ids = [
        job_id
        for start in range(0, len(messages), 1000)
        for job_id in producer.enqueue_many(messages[start : start + 1000])
    ]
    deadline = time.monotonic() + timeout
    while int(records.hget(stats, "sent") or 0) - before < len(job_ids):
        if time.monotonic() > deadline:
            raise RuntimeError("the pipeline did not deliver every message in time")
        time.sleep(0.05)
    sent = [status.sent_at for status in producer.get_statuses(job_ids) if status is not None]
    last_sent = max(sent_at.timestamp() for sent_at in sent if sent_at is not None)
    return len(job_ids) / (last_sent - started)
