"""The benchmark's quick mode, as a smoke test: every figure, and nothing left behind."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import redis

from producer import Producer
from producer.settings import ProducerSettings
from producer.store import Store
from tests.support import states, wire_messages

ROOT = Path(__file__).resolve().parent.parent.parent
FIGURES = ["requests_loop", "aiohttp_128", "aiohttp_1024_slow", "bulk", "singles", "bulk_slow",
           "latency_p50_ms", "latency_p99_ms", "rss_mb", "rss_slow_mb", "enqueue",
           "enqueue_many"]  # fmt: skip


@pytest.mark.integration
def test_quick_benchmark_keeps_to_its_namespace(
    redis_url: str, real_redis: redis.Redis, tmp_path: Path
) -> None:
    settings = ProducerSettings(redis_url=redis_url, queue="shop", prefix=None)
    shop = Producer(settings, Store.connect(settings))
    waiting = shop.enqueue_many(wire_messages(10))
    before = sorted(real_redis.scan_iter("*"))
    output = tmp_path / "bench.json"

    done = subprocess.run(
        [sys.executable, "-m", "bench", "--quick", "--latency", "0.2", "--json", str(output),
         "--redis-url", redis_url],
        cwd=ROOT, capture_output=True, text=True, timeout=600, check=False,
    )  # fmt: skip

    assert done.returncode == 0, done.stderr[-3000:]
    results = json.loads(output.read_text())
    for figure in FIGURES:
        assert results[figure] > 0, figure
    assert list(results["cpu_ms_loop"]) == ["client", "sandbox"]
    assert list(results["cpu_ms_pipeline"]) == ["worker", "Redis", "sandbox", "load"]
    assert sum(results["cpu_ms_pipeline"].values()) > results["cpu_ms_pipeline"]["worker"] > 0
    for row in (
        "worker: enqueue_many -> sent, answers at once",
        "x aiohttp 128",
        "worker: 8 threads, one enqueue per message",
        "answers in 0.2 s",
        "CPU per message, answers at once",
        "the ceiling on busy cores",
    ):
        assert row in done.stdout
    assert sorted(set(real_redis.scan_iter("*")) - {settings.keys.wakeup}) == [
        key for key in before if key != settings.keys.wakeup
    ]
    assert states(shop, waiting) == {"queued": 10}
