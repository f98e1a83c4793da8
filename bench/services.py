"""The processes a benchmark runs against: the sandbox, and one default worker."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path

from producer import Producer
from zixflow_queue.demo.processes import Command, free_port, running, wait_ready
from zixflow_queue.sandbox import SandboxClient

BENCH_KEY = "bench-key"
WORKER = ["celery", "-A", "worker", "worker"]
"""The worker as a user starts it: no flags (a node name is added, nothing else)."""


@contextmanager
def sandbox_process(log_dir: Path) -> Iterator[SandboxClient]:
    """The sandbox in a process of its own, so it never shares a GIL with what it measures."""
    port = free_port()
    argv = [sys.executable, "-m", "zixflow_queue.sandbox", "--port", str(port),
            "--api-key", BENCH_KEY]  # fmt: skip
    command = Command(argv, log_dir / "sandbox.log")
    with running([command]) as (child,), SandboxClient(f"http://127.0.0.1:{port}") as client:
        wait_ready(child, client.healthy, "the sandbox", command.log)
        yield client


@contextmanager
def default_worker(
    env: Mapping[str, str], log_dir: Path, producer: Producer
) -> Iterator[subprocess.Popen[bytes]]:
    """One `celery -A worker worker`, stopped on exit; ready once its heartbeat is in Redis."""
    log = log_dir / "worker.log"
    command = Command([sys.executable, "-m", *WORKER, "-n", "bench@%h"], log, env)
    workers = producer.keys.workers
    with running([command]) as (process,):
        wait_ready(process, lambda: producer.store.records.zcard(workers) > 0, "the worker", log)
        yield process


def peak_rss_mb(pid: int) -> float:
    """A process's peak resident memory so far (Linux), in MB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def cpu_seconds(pid: int) -> float:
    """User and system CPU time a process has used so far (Linux)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # utime, stime
