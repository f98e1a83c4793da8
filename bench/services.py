"""The processes a benchmark runs against: the sandbox, and one default worker."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from functools import partial
from pathlib import Path

import redis

from producer import Producer
from zixflow_queue.demo.processes import Command, free_port, running, wait_ready
from zixflow_queue.sandbox import SandboxClient

BENCH_KEY = "bench-key"
WORKER = ["celery", "-A", "worker", "worker"]
"""The worker as a user starts it: no flags (a node name is added, nothing else)."""


@dataclass(frozen=True)
class RunningSandbox:
    """The sandbox's client, and the process it runs in."""

    client: SandboxClient
    pid: int


@contextmanager
def sandbox_process(log_dir: Path) -> Iterator[RunningSandbox]:
    """The sandbox in a process of its own, so it never shares a GIL with what it measures."""
    port = free_port()
    argv = [sys.executable, "-m", "zixflow_queue.sandbox", "--port", str(port),
            "--api-key", BENCH_KEY]  # fmt: skip
    command = Command(argv, log_dir / "sandbox.log")
    with running([command]) as (child,), SandboxClient(f"http://127.0.0.1:{port}") as client:
        wait_ready(child, client.healthy, "the sandbox", command.log)
        yield RunningSandbox(client, child.pid)


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


def redis_cpu_seconds(client: redis.Redis) -> float:
    """User and system CPU time the Redis server has used so far (the whole server)."""
    used = client.info("cpu")
    return float(used["used_cpu_user"]) + float(used["used_cpu_sys"])


def process_cpu(pid: int) -> Callable[[], float]:
    """A reader of a process's CPU seconds so far."""
    return partial(cpu_seconds, pid)


@contextmanager
def cpu_per_message(
    parts: Mapping[str, Callable[[], float]], count: int
) -> Iterator[dict[str, float]]:
    """Milliseconds of CPU each part used per message over the block, filled in at its end."""
    before = {name: read() for name, read in parts.items()}
    used: dict[str, float] = {}
    yield used
    used.update({name: (read() - before[name]) * 1000 / count for name, read in parts.items()})
