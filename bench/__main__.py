"""`python -m bench`: the pipeline's throughput against a hand-written client, in one run.

Runs on any Redis (--redis-url, else REDIS_URL): in a namespace of its own, which it deletes when
done; it never touches another deployment's keys.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import uuid
from pathlib import Path
from typing import Any

from bench.measure import enqueue_rates, pipeline_rate, raw_client_rate, sample_messages
from bench.services import BENCH_KEY, cpu_seconds, peak_rss_mb, sandbox_process, workers
from producer import Producer
from producer.settings import ProducerSettings
from producer.store import Store
from zixflow_queue.demo.processes import DemoError
from zixflow_queue.namespace import remove_deployment
from zixflow_queue.sandbox import FaultPlan


def parse_args() -> argparse.Namespace:
    """The benchmark's flags."""
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("--messages", type=int, default=10_000, help="pipeline messages per run")
    parser.add_argument("--quick", action="store_true", help="small counts: a smoke test")
    parser.add_argument("--json", type=Path, help="also write the results here")
    parser.add_argument(
        "--redis-url",
        default=os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0"),
        help="the Redis to run on (default: REDIS_URL); the benchmark keeps to its namespace",
    )
    return parser.parse_args()


def run(args: argparse.Namespace) -> dict[str, Any]:
    """Every measurement, in one run against one sandbox and one Redis."""
    count = 300 if args.quick else args.messages
    limit_count = 300 if args.quick else 3_000
    queue = f"bench-{uuid.uuid4().hex[:6]}"
    idle_queue = f"{queue}-idle"
    settings = ProducerSettings(redis_url=args.redis_url, queue=queue, prefix=f"zq:{queue}")
    producer = Producer(settings, Store.connect(settings))
    machine = f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}"
    results: dict[str, Any] = {"machine": machine, "messages": count}
    try:
        with tempfile.TemporaryDirectory() as logs, sandbox_process(Path(logs)) as sandbox:
            limit_messages = sample_messages(limit_count)
            results["limit_session"] = raw_client_rate(sandbox.url, BENCH_KEY, limit_messages, 1)
            results["limit_threads"] = raw_client_rate(sandbox.url, BENCH_KEY, limit_messages, 16)
            idle = sample_messages(min(count, 3_000))
            results["enqueue"], results["enqueue_many"] = enqueue_rates(
                args.redis_url, idle_queue, idle
            )
            env = {
                "REDIS_URL": args.redis_url,
                "ZQ_QUEUE": queue,
                "ZQ_PREFIX": settings.keys.namespace,
                "ZIXFLOW_API_KEY": BENCH_KEY,
                "ZIXFLOW_BASE_URL": sandbox.url,
                "ZQ_PHONE_RATE": "100000",  # it measures delivery, not WhatsApp's limits
            }
            with workers(env, Path(logs)) as processes:
                pids = [process.pid for process in processes]
                timeout = 60 + count / 50
                cpu = cpu_seconds(pids)
                results["pipeline"] = pipeline_rate(producer, sample_messages(count), timeout)
                results["worker_cpu_ms_per_message"] = (cpu_seconds(pids) - cpu) * 1000 / count
                sandbox.configure(FaultPlan(latency_ms=100))
                # New recipients for each run: the default pacing per recipient stays on.
                later = sample_messages(count, first=count)
                results["pipeline_100ms"] = pipeline_rate(producer, later, timeout)
                results["worker_peak_rss_mb"] = [peak_rss_mb(pid) for pid in pids]
    finally:
        remove_deployment(producer.store, settings)
    results["pipeline_vs_limit"] = results["pipeline"] / results["limit_session"]
    return results


def report(results: dict[str, Any]) -> str:
    """The results as a small table."""
    rows = [
        ("limit: one requests.Session, sequential", f"{results['limit_session']:,.0f} msg/s"),
        ("limit: 16 threads sharing a session", f"{results['limit_threads']:,.0f} msg/s"),
        ("pipeline (enqueue_many → sent), 0 ms", f"{results['pipeline']:,.0f} msg/s"),
        ("pipeline, 100 ms added latency", f"{results['pipeline_100ms']:,.0f} msg/s"),
        ("enqueue, one call per job", f"{results['enqueue']:,.0f} jobs/s"),
        ("enqueue_many, batches of 1,000", f"{results['enqueue_many']:,.0f} jobs/s"),
        ("worker CPU per message, 0 ms", f"{results['worker_cpu_ms_per_message']:.2f} ms"),
        ("worker peak RSS", ", ".join(f"{mb:.0f} MB" for mb in results["worker_peak_rss_mb"])),
        ("pipeline / single-session limit", f"{results['pipeline_vs_limit']:.2f}x"),
    ]
    width = max(len(name) for name, _ in rows)
    lines = [f"{results['machine']}; {results['messages']:,} messages per pipeline run", ""]
    lines += [f"{name:<{width}}  {value:>16}" for name, value in rows]
    return "\n".join(lines)


def main() -> int:
    """Run, print the table, and write JSON when asked."""
    args = parse_args()
    try:
        results = run(args)
    except DemoError as error:  # the sandbox or a worker did not start: its log says why
        print(f"python -m bench: error: {error}", file=sys.stderr)
        return 1
    print(report(results))
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))
        print(f"results written to {args.json}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
