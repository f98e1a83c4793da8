"""`python -m bench`: the pipeline's speed against hand-written clients measured in the same run.

One default worker (`celery -A worker worker`), the sandbox in a process of its own, and the
Redis at --redis-url, where the benchmark keeps to a namespace of its own and deletes it when
done. Messages are spread over 100 sending phone ids, so the default rate limits hold but do
not bind.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import uuid
from collections.abc import Callable, Mapping
from functools import partial
from pathlib import Path
from typing import Any

from bench.limits import aiohttp_loop_rate, requests_loop_rate
from bench.measure import (
    added_latency,
    bulk_rate,
    enqueue_rates,
    sample_messages,
    singles_rate,
    wire_bodies,
)
from bench.report import report
from bench.services import (
    BENCH_KEY,
    cpu_per_message,
    default_worker,
    peak_rss_mb,
    process_cpu,
    redis_cpu_seconds,
    sandbox_process,
)
from producer import Producer
from producer.settings import ProducerSettings
from producer.store import Store
from zixflow_queue.demo.processes import DemoError
from zixflow_queue.namespace import remove_deployment
from zixflow_queue.sandbox import FaultPlan, SandboxClient


def parse_args() -> argparse.Namespace:
    """The benchmark's flags."""
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("--messages", type=int, default=10_000, help="messages per run")
    parser.add_argument(
        "--latency", type=float, default=1.0, help="seconds of each answer in the slow runs"
    )
    parser.add_argument("--quick", action="store_true", help="small counts: a smoke test")
    parser.add_argument("--json", type=Path, help="also write the results here")
    parser.add_argument(
        "--redis-url",
        default=os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0"),
        help="the Redis to run on (default: REDIS_URL); the benchmark keeps to its namespace",
    )
    return parser.parse_args()


def run(args: argparse.Namespace) -> dict[str, Any]:
    """Every measurement, in one run against one sandbox, one worker and one Redis."""
    count = 300 if args.quick else args.messages
    queue = f"bench-{uuid.uuid4().hex[:6]}"
    settings = ProducerSettings(redis_url=args.redis_url, queue=queue, prefix=f"zq:{queue}")
    producer = Producer(settings, Store.connect(settings))
    machine = f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}"
    results: dict[str, Any] = {"machine": machine, "messages": count, "latency": args.latency}
    messages = Messages(count)
    try:
        with tempfile.TemporaryDirectory() as logs, sandbox_process(Path(logs)) as running:
            sandbox, sandbox_cpu = running.client, process_cpu(running.pid)
            results |= _limits(sandbox, messages, args.latency, sandbox_cpu)
            results["enqueue"], results["enqueue_many"] = enqueue_rates(
                args.redis_url, f"{queue}-idle", messages.next(min(count, 3_000))
            )
            env = {"REDIS_URL": args.redis_url, "ZQ_QUEUE": queue, "ZQ_PREFIX": f"zq:{queue}",
                   "ZIXFLOW_API_KEY": BENCH_KEY, "ZIXFLOW_BASE_URL": sandbox.url}  # fmt: skip
            with default_worker(env, Path(logs), producer) as worker:
                cpu = _pipeline_cpu(worker.pid, producer, sandbox_cpu)
                results |= _pipeline(producer, sandbox, messages, worker.pid, args.latency, cpu)
    finally:
        remove_deployment(producer.store, settings)
    return results


class Messages:
    """Fresh messages for each run: new recipients, so per-recipient pacing never binds."""

    def __init__(self, count: int) -> None:
        self.count = count
        self._used = 0

    def next(self, count: int | None = None) -> list[dict[str, Any]]:
        """The next `count` (default: the run size) messages."""
        count = count or self.count
        first, self._used = self._used, self._used + count
        return sample_messages(count, first=first)


def _limits(
    sandbox: SandboxClient, messages: Messages, latency: float, sandbox_cpu: Callable[[], float]
) -> dict[str, Any]:
    """The hand-written clients: at once, then with every answer `latency` seconds late."""
    sequential = wire_bodies(messages.next(min(messages.count, 3_000)))
    limits: dict[str, Any] = {
        "requests_loop": requests_loop_rate(sandbox.url, BENCH_KEY, sequential)
    }
    bodies = wire_bodies(messages.next())  # made before the CPU is counted: no client's work
    parts = {"client": process_cpu(os.getpid()), "sandbox": sandbox_cpu}
    with cpu_per_message(parts, messages.count) as limits["cpu_ms_loop"]:
        limits["aiohttp_128"] = aiohttp_loop_rate(sandbox.url, BENCH_KEY, bodies, 128)
    sandbox.configure(FaultPlan(latency_ms=latency * 1000))
    bodies = wire_bodies(messages.next())
    limits["aiohttp_1024_slow"] = aiohttp_loop_rate(sandbox.url, BENCH_KEY, bodies, 1024)
    sandbox.configure(FaultPlan())
    return limits


def _pipeline_cpu(
    worker_pid: int, producer: Producer, sandbox_cpu: Callable[[], float]
) -> dict[str, Callable[[], float]]:
    """Readers of the CPU time each part of the pipeline has used: this process is the load."""
    return {
        "worker": process_cpu(worker_pid),
        "Redis": partial(redis_cpu_seconds, producer.store.records),
        "sandbox": sandbox_cpu,
        "load": process_cpu(os.getpid()),
    }


def _pipeline(
    producer: Producer,
    sandbox: SandboxClient,
    messages: Messages,
    pid: int,
    latency: float,
    cpu: Mapping[str, Callable[[], float]],
) -> dict[str, Any]:
    """The worker: bulk at once (with the CPU per message of each part), singles, latency,
    slow answers."""
    timeout = 120 + messages.count / 50
    figures: dict[str, Any] = {}
    bulk = messages.next()
    with cpu_per_message(cpu, messages.count) as figures["cpu_ms_pipeline"]:
        first = bulk_rate(producer, bulk, timeout)
    figures["singles"] = singles_rate(producer, messages.next(), 8, timeout)
    # The bulk runs before and after the singles, so that both see the same worker warmed up.
    figures["bulk"] = (first + bulk_rate(producer, messages.next(), timeout)) / 2
    paced = messages.next(min(messages.count, 2_000))
    figures["latency_p50_ms"], figures["latency_p99_ms"] = added_latency(
        producer, paced, 200, timeout
    )
    figures["rss_mb"] = peak_rss_mb(pid)
    sandbox.configure(FaultPlan(latency_ms=latency * 1000))
    figures["bulk_slow"] = bulk_rate(producer, messages.next(), timeout + messages.count)
    figures["rss_slow_mb"] = peak_rss_mb(pid)
    return figures


def main() -> int:
    """Run, print the table, and write JSON when asked."""
    args = parse_args()
    try:
        results = run(args)
    except (DemoError, RuntimeError) as error:  # a part did not start, or did not deliver
        print(f"python -m bench: error: {error}", file=sys.stderr)
        return 1
    print(report(results))
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))
        print(f"results written to {args.json}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
