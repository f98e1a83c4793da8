"""`zixflow-queue demo`: the whole pipeline on this machine, with a summary of how it went.

Redis is the one at REDIS_URL if it answers, else a private redis-server, else an embedded
Redis-compatible server (for trying only). Zixflow is the sandbox, misbehaving now and then,
unless ZIXFLOW_API_KEY and ZIXFLOW_BASE_URL both point at the real API.
"""

from __future__ import annotations

import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from statistics import quantiles
from typing import Any

import redis

from producer.enqueue import Producer
from producer.settings import ProducerSettings
from producer.status import JobStatus
from producer.store import Store

SANDBOX_KEY = "demo-sandbox-key"
SANDBOX_FAULTS = ["error500=0.08", "throttle429=0.04", "drop=0.02", "window=0.03"]


def run_demo(count: int, workers: int) -> int:
    """Start everything, send `count` messages, print the summary; stop everything."""
    with ExitStack() as stack:
        logs = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="zq-demo-")))
        redis_url = stack.enter_context(_redis(logs))
        zixflow = stack.enter_context(_zixflow(logs))
        queue = f"demo-{secrets.token_hex(3)}"
        env = {"REDIS_URL": redis_url, "ZQ_QUEUE": queue, **zixflow,
               "ZQ_BACKOFF_BASE": "0.2", "ZQ_BACKOFF_CAP": "2"}  # fmt: skip
        for index in range(workers):
            stack.enter_context(_worker(index, env, logs))
        settings = ProducerSettings(redis_url=redis_url, queue=queue)
        producer = Producer(settings, Store.connect(settings))
        started = time.time()
        job_ids = producer.enqueue_many(demo_messages(count))
        _say(f"enqueued {count} messages; {workers} workers are sending them")
        statuses = _watch(producer, job_ids)
        print(summary(statuses, started))
    return 0 if all(status.final for status in statuses) and len(statuses) == count else 1


def demo_messages(count: int) -> list[dict[str, Any]]:
    """Order confirmations to distinct recipients from four numbers; every tenth waits for
    its submission status."""
    return [
        {
            "to": f"9199{n:08d}",
            "phoneId": f"10654035224292{n % 4}",
            "interactive": {
                "header": {"type": "text", "text": "Your order"},
                "body": {"text": f"Order #{1000 + n} is ready. Deliver tomorrow, 9 to 12?"},
                "footer": {"text": "Reply to choose"},
                "action": {"buttons": [
                    {"type": "reply", "reply": {"id": f"yes-{n}", "title": "Yes"}},
                    {"type": "reply", "reply": {"id": f"later-{n}", "title": "Another day"}},
                ]},
            },
            "submissionStatus": n % 10 == 0,
        }
        for n in range(count)
    ]  # fmt: skip


def _watch(producer: Producer, job_ids: list[str]) -> list[JobStatus]:
    """Poll until every job is sent or failed, drawing a progress bar on stderr."""
    deadline = time.monotonic() + 120 + len(job_ids) / 10
    while True:
        statuses = [s for s in producer.get_statuses(job_ids) if s is not None]
        done = sum(status.final for status in statuses)
        _progress(done, len(job_ids))
        if done == len(job_ids) or time.monotonic() > deadline:
            print(file=sys.stderr)
            return statuses
        time.sleep(0.2)


def _progress(done: int, total: int, width: int = 40) -> None:
    filled = width * done // max(total, 1)
    bar = "#" * filled + "-" * (width - filled)
    print(f"\r[{bar}] {done}/{total} finished", end="", file=sys.stderr, flush=True)


def summary(statuses: list[JobStatus], started: float) -> str:
    """The demo's closing table."""
    sent = [s for s in statuses if s.state == "sent"]
    failed = [s for s in statuses if s.state == "failed"]
    finished = [s for s in statuses if s.final and s.updated_at]
    latencies = sorted(
        (s.updated_at.timestamp() - s.created_at.timestamp()) * 1000
        for s in finished
        if s.updated_at and s.created_at
    )
    p50, p95 = _percentiles(latencies)
    last = max((s.updated_at.timestamp() for s in finished if s.updated_at), default=started)
    rows = [
        ("jobs", f"{len(statuses)}"),
        ("sent", f"{len(sent)}"),
        ("failed", f"{len(failed)}"),
        ("retried (sent or failed after more than one attempt)",
         f"{sum(s.attempts > 1 for s in statuses)}"),
        ("HTTP attempts in all", f"{sum(s.attempts for s in statuses)}"),
        ("latency p50 / p95 (enqueue to outcome)", f"{p50:.0f} ms / {p95:.0f} ms"),
        ("every job finished after", f"{last - started:.1f} s (retry waits included)"),
        ("throughput", f"{len(finished) / max(last - started, 1e-6):.0f} messages/s"),
        ("unfinished", f"{sum(not s.final for s in statuses)}"),
    ]  # fmt: skip
    reasons = Counter((s.error or "?")[:70] for s in failed)
    rows += [(f"  failed: {reason}", f"{n}") for reason, n in reasons.most_common()]
    width = max(len(name) for name, _ in rows)
    return "\n".join(f"{name:<{width}}  {value}" for name, value in rows)


def _percentiles(values: list[float]) -> tuple[float, float]:
    if len(values) < 2:
        return (values[0], values[0]) if values else (0.0, 0.0)
    cuts = quantiles(values, n=100)
    return cuts[49], cuts[94]


def _say(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _answers(url: str) -> bool:
    try:
        return bool(redis.Redis.from_url(url, socket_connect_timeout=1, socket_timeout=1).ping())
    except (redis.ConnectionError, redis.TimeoutError, ValueError):
        return False


@contextmanager
def _process(command: list[str], log: Path, env: dict[str, str] | None = None) -> Iterator[None]:
    """A child process in a session of its own, terminated (then killed) on the way out."""
    with log.open("wb") as output:
        child = subprocess.Popen(
            command, stdout=output, stderr=subprocess.STDOUT,
            env={**os.environ, **(env or {})}, start_new_session=True,
        )  # fmt: skip
        try:
            yield
        finally:
            _stop(child)


def _stop(child: subprocess.Popen[bytes]) -> None:
    if child.poll() is None:
        os.killpg(child.pid, signal.SIGTERM)
        try:
            child.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(child.pid, signal.SIGKILL)
            child.wait()


def _wait(condition: Any, what: str, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise RuntimeError(f"{what} did not start in {timeout:.0f}s")
        time.sleep(0.1)


@contextmanager
def _redis(logs: Path) -> Iterator[str]:
    """REDIS_URL if it answers; else a private redis-server; else an embedded server."""
    url = os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0")
    if _answers(url):
        _say(f"Redis: {url}")
        yield url
        return
    port = _free_port()
    url = f"redis://127.0.0.1:{port}/0"
    binary = shutil.which("redis-server")
    if binary:
        command = [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "",
                   "--appendonly", "no", "--dir", str(logs)]  # fmt: skip
        _say(f"Redis: none answered, started redis-server on port {port}")
    else:
        command = [sys.executable, "-c", "import sys, fakeredis; fakeredis.TcpFakeServer("
                   f"('127.0.0.1', {port})).serve_forever()"]  # fmt: skip
        _say(f"Redis: none found; using an embedded fakeredis server on port {port} "
             "(for trying only: it keeps nothing and is slower than Redis)")  # fmt: skip
    with _process(command, logs / "redis.log"):
        _wait(lambda: _answers(url), "Redis")
        yield url


@contextmanager
def _zixflow(logs: Path) -> Iterator[dict[str, str]]:
    """The real API when both ZIXFLOW_ variables are set; otherwise the sandbox, misbehaving."""
    key, base = os.environ.get("ZIXFLOW_API_KEY"), os.environ.get("ZIXFLOW_BASE_URL")
    if key and base:
        _say(f"Zixflow: {base}")
        yield {}
        return
    port = _free_port()
    rates = [arg for rate in SANDBOX_FAULTS for arg in ("--rate", rate)]
    command = [sys.executable, "-m", "worker.sandbox", "--port", str(port), "--api-key",
               SANDBOX_KEY, "--retry-after", "0.5", "--seed", "7", *rates]  # fmt: skip
    with _process(command, logs / "sandbox.log"):
        from worker.sandbox import SandboxClient  # noqa: PLC0415 - only when the sandbox runs

        _wait(SandboxClient(f"http://127.0.0.1:{port}").healthy, "the sandbox")
        _say(f"Zixflow: the sandbox on port {port}, failing now and then "
             f"({', '.join(SANDBOX_FAULTS)})")  # fmt: skip
        yield {"ZIXFLOW_API_KEY": SANDBOX_KEY, "ZIXFLOW_BASE_URL": f"http://127.0.0.1:{port}"}


@contextmanager
def _worker(index: int, env: dict[str, str], logs: Path) -> Iterator[None]:
    log = logs / f"worker-{index}.log"
    command = [sys.executable, "-m", "celery", "-A", "worker", "worker", "--loglevel=INFO",
               "-n", f"demo{index}-{secrets.token_hex(2)}@%h"]  # fmt: skip
    with _process(command, log, env):
        _wait(lambda: " ready." in log.read_text(errors="replace"), f"worker {index}")
        yield
