"""The processes a benchmark runs against: the sandbox, and workers started as compose would."""

from __future__ import annotations

import os
import shlex
import signal
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path

import yaml

from producer.demo.processes import free_port
from worker.sandbox import SandboxClient

ROOT = Path(__file__).resolve().parent.parent
BENCH_KEY = "bench-key"


def compose_worker() -> tuple[list[str], int]:
    """The worker service's command and replica count from docker-compose.yml."""
    service = yaml.safe_load((ROOT / "docker-compose.yml").read_text())["services"]["worker"]
    command = service["command"]
    command = shlex.split(command) if isinstance(command, str) else list(command)
    return command, int(service.get("deploy", {}).get("replicas", 1))


def _wait_for(predicate: object, what: str, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():  # type: ignore[operator]
        if time.monotonic() > deadline:
            raise RuntimeError(f"timed out waiting for {what}")
        time.sleep(0.05)


@contextmanager
def sandbox_process() -> Iterator[SandboxClient]:
    """The sandbox in a process of its own, so it never shares a GIL with what it measures."""
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "worker.sandbox", "--port", str(port), "--api-key", BENCH_KEY],
        stderr=subprocess.DEVNULL,
    )
    client = SandboxClient(f"http://127.0.0.1:{port}")
    try:
        _wait_for(client.healthy, "the sandbox")
        yield client
    finally:
        process.terminate()
        process.wait(timeout=10)


@contextmanager
def workers(env: Mapping[str, str], log_dir: Path) -> Iterator[list[subprocess.Popen[bytes]]]:
    """Worker processes started with compose's command and replica count; stopped on exit."""
    command, replicas = compose_worker()
    command = [sys.executable, "-m", *command] if command[0] == "celery" else command
    processes = []
    logs = []
    try:
        for index in range(replicas):
            log = (log_dir / f"worker-{index}.log").open("wb")
            logs.append(log)
            processes.append(
                subprocess.Popen(
                    [*command, "-n", f"bench{index}@%h"],
                    env={**os.environ, **env},
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    start_new_session=True,
                )
            )
        for index in range(replicas):
            path = log_dir / f"worker-{index}.log"
            _wait_for(lambda p=path: " ready." in p.read_text(errors="replace"), "a worker")
        yield processes
    finally:
        for process in processes:
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGTERM)
        for process in processes:
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
        for log in logs:
            log.close()


def peak_rss_mb(pid: int) -> float:
    """A process's peak resident memory so far (Linux), in MB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def cpu_seconds(pids: list[int]) -> float:
    """User and system CPU time the processes have used so far (Linux)."""
    ticks = 0
    for pid in pids:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        ticks += int(fields[11]) + int(fields[12])  # utime, stime
    return ticks / os.sysconf("SC_CLK_TCK")
