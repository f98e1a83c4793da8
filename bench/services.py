"""The processes a benchmark runs against: the sandbox, and workers started as compose would."""

from __future__ import annotations

import os
import shlex
import subprocess
import sys
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path

import yaml

from zixflow_queue.demo.processes import Command, free_port, running, wait_ready
from zixflow_queue.sandbox import SandboxClient

ROOT = Path(__file__).resolve().parent.parent
BENCH_KEY = "bench-key"


def compose_worker() -> tuple[list[str], int]:
    """The worker service's command and replica count from docker-compose.yml."""
    service = yaml.safe_load((ROOT / "docker-compose.yml").read_text())["services"]["worker"]
    command = service["command"]
    command = shlex.split(command) if isinstance(command, str) else list(command)
    return command, int(service.get("deploy", {}).get("replicas", 1))


@contextmanager
def sandbox_process(log_dir: Path) -> Iterator[SandboxClient]:
    """The sandbox in a process of its own, so it never shares a GIL with what it measures."""
    port = free_port()
    argv = [
        sys.executable,
        "-m",
        "zixflow_queue.sandbox",
        "--port",
        str(port),
        "--api-key",
        BENCH_KEY,
    ]
    command = Command(argv, log_dir / "sandbox.log")
    with running([command]) as (child,), SandboxClient(f"http://127.0.0.1:{port}") as client:
        wait_ready(child, client.healthy, "the sandbox", command.log)
        yield client


@contextmanager
def workers(env: Mapping[str, str], log_dir: Path) -> Iterator[list[subprocess.Popen[bytes]]]:
    """Worker processes started with compose's command and replica count; stopped on exit."""
    command, replicas = compose_worker()
    command = [sys.executable, "-m", *command] if command[0] == "celery" else command
    commands = [
        Command([*command, "-n", f"bench{index}@%h"], log_dir / f"worker-{index}.log", env)
        for index in range(replicas)
    ]
    with running(commands) as processes:
        for index, (process, started) in enumerate(zip(processes, commands, strict=True)):
            wait_ready(process, _logged_ready(started.log), f"worker {index}", started.log)
        yield processes


def _logged_ready(log: Path) -> Callable[[], bool]:
    return lambda: " ready." in log.read_text(errors="replace")


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
