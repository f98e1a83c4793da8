"""The benchmark's quick mode, as a smoke test: it runs and produces every figure."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import redis

ROOT = Path(__file__).resolve().parent.parent.parent
FIGURES = ["limit_session", "limit_threads", "pipeline", "pipeline_100ms", "enqueue",
           "enqueue_many", "pipeline_vs_limit", "worker_cpu_ms_per_message"]  # fmt: skip


@pytest.mark.integration
def test_quick_benchmark_produces_every_figure(redis_url: str, tmp_path: Path) -> None:
    output = tmp_path / "bench.json"
    done = subprocess.run(
        [sys.executable, "-m", "bench", "--quick", "--json", str(output), "--redis-url", redis_url],
        cwd=ROOT, capture_output=True, text=True, timeout=600, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    results = json.loads(output.read_text())
    for figure in FIGURES:
        assert results[figure] > 0, figure
    assert len(results["worker_peak_rss_mb"]) >= 1
    assert "pipeline / single-session limit" in done.stdout


@pytest.mark.integration
def test_the_benchmark_refuses_a_database_holding_job_data(
    redis_url: str, real_redis: redis.Redis
) -> None:
    real_redis.set("zq:job:someone-elses", "1")
    done = subprocess.run(
        [sys.executable, "-m", "bench", "--quick", "--redis-url", redis_url],
        cwd=ROOT, capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert done.returncode == 2, done.stderr[-3000:]
    assert "already holds zq:* keys" in done.stderr
    assert real_redis.get("zq:job:someone-elses") == "1"
