"""The HTTP service's throughput, against `Producer.enqueue` and `enqueue_many` in the same run.

`python -m bench.service` runs it alone and prints the figures; `service_rates` is the function
a larger benchmark calls. The service runs in its own process, started as `zixflow-queue serve`;
the load comes from this process through aiohttp, over keep-alive connections.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import sys
import tempfile
import time
import urllib.request
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp

from bench.measure import sample_messages
from producer import Producer
from producer.settings import ProducerSettings
from producer.store import Store
from zixflow_queue.demo.processes import Command, DemoError, free_port, running, wait_ready
from zixflow_queue.namespace import remove_deployment

TOKEN = "bench-token"
CONNECTIONS = 16
BATCH = 1000
WARM_UP = 200
"""Requests sent before each timed run: connections open, code paths warm."""


def service_rates(
    redis_url: str, *, requests: int = 5000, batches: int = 20, rounds: int = 3, workers: int = 1
) -> dict[str, float]:
    """Msgs/s of single POSTs from 16 connections and of 1,000-item batches, against `enqueue`
    and `enqueue_many` from one thread in the same run, and the single POSTs' p50/p99 latency
    in ms: the medians of `rounds` rounds, with the service run as `serve --workers N`."""
    queue = f"bench-service-{uuid.uuid4().hex[:6]}"
    settings = ProducerSettings(redis_url=redis_url, queue=queue, prefix=f"zq:{queue}")
    producer = Producer(settings, Store.connect(settings))
    env = {"REDIS_URL": redis_url, "ZQ_QUEUE": queue, "ZQ_PREFIX": settings.keys.namespace,
           "ZQ_API_TOKENS": TOKEN}  # fmt: skip
    load = Workload.of(requests, batches)
    try:
        with tempfile.TemporaryDirectory() as logs, service(env, Path(logs), workers) as url:
            runs = [_measure(producer, url, load) for _ in range(rounds)]
    finally:
        remove_deployment(producer.store, settings)
    return {name: statistics.median(run[name] for run in runs) for name in runs[0]}


@dataclass(frozen=True)
class Workload:
    """The same messages for the producer and the service, the request bodies made ahead."""

    messages: list[dict[str, Any]]
    singles: list[bytes]
    batches: list[list[dict[str, Any]]]
    batch_bodies: list[bytes]

    @classmethod
    def of(cls, requests: int, batches: int) -> Workload:
        """`requests` single messages and `batches` batches of 1,000."""
        messages = sample_messages(requests)
        chunks = [sample_messages(BATCH, first=n * BATCH) for n in range(batches)]
        return cls(
            messages,
            [json.dumps({"message": message}).encode() for message in messages],
            chunks,
            [json.dumps({"items": [{"message": m} for m in chunk]}).encode() for chunk in chunks],
        )


def _measure(producer: Producer, url: str, load: Workload) -> dict[str, float]:
    """One round: the producer's rates, then the service's."""
    enqueue = _rate(len(load.messages), lambda: [producer.enqueue(m) for m in load.messages])
    many = _rate(len(load.batches) * BATCH, lambda: list(map(producer.enqueue_many, load.batches)))
    post, latencies = asyncio.run(_post_all(f"{url}/v1/messages", load.singles))
    batches, _ = asyncio.run(_post_all(f"{url}/v1/messages/batch", load.batch_bodies))
    return {
        "enqueue": enqueue,
        "post": post,
        "post_vs_enqueue": post / enqueue,
        "enqueue_many": many,
        "batch": batches * BATCH,
        "batch_vs_enqueue_many": batches * BATCH / many,
        "p50_ms": _percentile(latencies, 50) * 1000,
        "p99_ms": _percentile(latencies, 99) * 1000,
    }


@contextmanager
def service(env: Mapping[str, str], log_dir: Path, workers: int = 1) -> Iterator[str]:
    """`zixflow-queue serve` in a process of its own, without an access log; yields its URL."""
    port = free_port()
    argv = [sys.executable, "-m", "zixflow_queue", "serve", "--port", str(port),
            "--workers", str(workers), "--no-access-log"]  # fmt: skip
    command = Command(argv, log_dir / "service.log", env)
    url = f"http://127.0.0.1:{port}"
    with running([command]) as (child,):
        wait_ready(child, lambda: _answers(f"{url}/readyz"), "the service", command.log)
        yield url


def _answers(url: str) -> bool:
    with suppress(OSError), urllib.request.urlopen(url, timeout=2) as answer:
        return bool(answer.status == 200)
    return False


async def _post_all(url: str, bodies: Sequence[bytes]) -> tuple[float, list[float]]:
    """Requests/s posting every body from 16 keep-alive connections, and each one's latency."""
    headers = {"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json"}
    connector = aiohttp.TCPConnector(limit=CONNECTIONS)
    async with aiohttp.ClientSession(connector=connector, headers=headers) as session:
        await _post_from_connections(session, url, [bodies[0]] * min(WARM_UP, len(bodies)), [])
        latencies: list[float] = []
        started = time.perf_counter()
        await _post_from_connections(session, url, bodies, latencies)
        elapsed = time.perf_counter() - started
    return len(bodies) / elapsed, latencies


async def _post_from_connections(
    session: aiohttp.ClientSession, url: str, bodies: Sequence[bytes], latencies: list[float]
) -> None:
    pending = iter(bodies)  # shared: each connection's loop takes the next body

    async def post_in_turn() -> None:
        for body in pending:
            started = time.perf_counter()
            async with session.post(url, data=body) as answer:
                text = await answer.read()
                if answer.status != 202:
                    raise RuntimeError(f"the service answered {answer.status}: {text[:300]!r}")
            latencies.append(time.perf_counter() - started)

    await asyncio.gather(*(post_in_turn() for _ in range(CONNECTIONS)))


def _rate(count: int, run: Callable[[], object]) -> float:
    started = time.perf_counter()
    run()
    return count / (time.perf_counter() - started)


def _percentile(values: Sequence[float], percent: int) -> float:
    return statistics.quantiles(values, n=100)[percent - 1]


def report(results: Mapping[str, float]) -> str:
    """The figures as a small table."""
    rows = [
        ("enqueue, one thread", f"{results['enqueue']:,.0f} msg/s"),
        ("POST /v1/messages, 16 connections", f"{results['post']:,.0f} msg/s"),
        ("POST / enqueue", f"{results['post_vs_enqueue']:.2f}x"),
        ("POST latency p50 / p99", f"{results['p50_ms']:.1f} ms / {results['p99_ms']:.1f} ms"),
        ("enqueue_many, batches of 1,000", f"{results['enqueue_many']:,.0f} msg/s"),
        ("POST /v1/messages/batch, 1,000 items", f"{results['batch']:,.0f} msg/s"),
        ("batch / enqueue_many", f"{results['batch_vs_enqueue_many']:.2f}x"),
    ]
    width = max(len(name) for name, _ in rows)
    return "\n".join(f"{name:<{width}}  {value:>18}" for name, value in rows)


def main() -> int:
    """Measure with the command line's counts and print the figures."""
    parser = argparse.ArgumentParser(prog="python -m bench.service", description=__doc__)
    parser.add_argument("--requests", type=int, default=5000, help="single POSTs per round")
    parser.add_argument("--batches", type=int, default=20, help="1,000-item batches per round")
    parser.add_argument("--rounds", type=int, default=3, help="rounds; figures are medians")
    parser.add_argument(
        "--workers", type=int, default=1, help="service processes (serve --workers)"
    )
    parser.add_argument(
        "--redis-url",
        default=os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0"),
        help="the Redis to run on (default: REDIS_URL); it keeps to a namespace of its own",
    )
    args = parser.parse_args()
    try:
        results = service_rates(
            args.redis_url,
            requests=args.requests,
            batches=args.batches,
            rounds=args.rounds,
            workers=args.workers,
        )
    except DemoError as error:  # the service did not start: its log says why
        print(f"python -m bench.service: error: {error}", file=sys.stderr)
        return 1
    print(report(results))
    return 0


if __name__ == "__main__":
    sys.exit(main())
