"""The benchmark's quick mode, as a smoke test: it runs and produces every figure."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

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
