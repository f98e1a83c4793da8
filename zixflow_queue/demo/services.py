"""What the demo runs: a Redis, Zixflow (the sandbox unless the real API is set), workers, and
with the sandbox the HTTP service that takes the replies its recipients send."""

from __future__ import annotations

import http.client
import importlib.util
import os
import secrets
import shutil
import sys
import urllib.request
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import redis

from producer.settings import ProducerSettings, load_settings
from zixflow_queue.cli.output import note
from zixflow_queue.demo.processes import Command, DemoError, free_port, running, wait_ready
from zixflow_queue.service.zixflow_events import PATH as EVENTS_PATH

SANDBOX_KEY = "demo-sandbox-key"
SANDBOX_FAULTS = {"error500": 0.08, "throttle429": 0.04, "drop": 0.02, "window": 0.03}
"""Most messages go through; some are retried (500, 429, a dropped connection), and a few
fail for good (the 24-hour window closed)."""
RETRY_AFTER = 0.5
REPLY_RATE, REPLY_DELAY = 0.4, "0.5-3"
"""Two in five recipients of a message the sandbox accepts tap a button, 0.5 to 3 s later."""


@dataclass(frozen=True)
class RedisService:
    """The Redis the demo uses, and whether the demo started it (so nothing else shares it)."""

    url: str
    private: bool


@dataclass(frozen=True)
class ZixflowService:
    """Where workers send, with which key, and whether that is the sandbox."""

    base_url: str
    api_key: str
    sandbox: bool

    def environment(self) -> dict[str, str]:
        """The workers' ZIXFLOW_ variables."""
        return {"ZIXFLOW_API_KEY": self.api_key, "ZIXFLOW_BASE_URL": self.base_url}


@dataclass(frozen=True)
class Replies:
    """Where the sandbox posts its recipients' replies: the demo's HTTP service, with a token."""

    port: int
    token: str = field(repr=False)

    @classmethod
    def new(cls) -> Replies:
        """A free port for the service, and a fresh webhook token."""
        return cls(free_port(), secrets.token_urlsafe(24))

    @property
    def service_url(self) -> str:
        """The HTTP service's base URL."""
        return f"http://127.0.0.1:{self.port}"


@contextmanager
def redis_service(workdir: Path) -> Iterator[RedisService]:
    """REDIS_URL if it answers; else a private redis-server; else an embedded fakeredis server."""
    url = load_settings(ProducerSettings).redis_url
    if redis_answers(url):
        note(f"Redis: {url}")
        yield RedisService(url, private=False)
        return
    port = free_port()
    private_url = f"redis://127.0.0.1:{port}/0"
    argv, started = _redis_server(port, workdir) or _embedded_redis(port, url)
    command = Command(argv, workdir / "redis.log")
    with running([command]) as (child,):
        wait_ready(child, lambda: redis_answers(private_url), "Redis", command.log)
        note(f"Redis: none answered at {url}; {started}")
        yield RedisService(private_url, private=True)


def _redis_server(port: int, workdir: Path) -> tuple[list[str], str] | None:
    """A private redis-server's command and what to say about it; None when not installed."""
    binary = shutil.which("redis-server")
    if binary is None:
        return None
    argv = [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "",
            "--appendonly", "no", "--dir", str(workdir)]  # fmt: skip
    return argv, f"started redis-server on port {port} (keeping nothing on disk)"


def _embedded_redis(port: int, tried: str) -> tuple[list[str], str]:
    """An embedded fakeredis server's command and what to say about it."""
    if not all(importlib.util.find_spec(name) for name in ("fakeredis", "lupa")):
        raise DemoError(
            f"no Redis answers at {tried}, redis-server is not installed, and neither is "
            "fakeredis[lua] for an embedded one: start a Redis and set REDIS_URL, install "
            "redis-server, or `pip install 'fakeredis[lua]'`"
        )
    argv = [sys.executable, "-m", "zixflow_queue.demo.embedded_redis", str(port)]
    return argv, (
        f"redis-server is not installed, so started an embedded fakeredis server on port {port}, "
        "for trying only: slower than Redis, and it keeps nothing"
    )


def redis_answers(url: str) -> bool:
    """Whether a Redis server answers PING at `url` (within a second)."""
    try:
        client = redis.Redis.from_url(url, socket_connect_timeout=1, socket_timeout=1)
        with client:
            return bool(client.ping())
    except (redis.RedisError, ValueError):
        return False


def real_api() -> bool:
    """Whether ZIXFLOW_API_KEY and ZIXFLOW_BASE_URL are both set, so the demo uses them."""
    return bool(os.environ.get("ZIXFLOW_API_KEY") and os.environ.get("ZIXFLOW_BASE_URL"))


@contextmanager
def zixflow_service(workdir: Path, replies: Replies | None = None) -> Iterator[ZixflowService]:
    """The real API when ZIXFLOW_API_KEY and ZIXFLOW_BASE_URL are both set; else the sandbox,
    posting its recipients' `replies` to the demo's HTTP service."""
    if real_api():
        base = os.environ["ZIXFLOW_BASE_URL"]
        note(f"Zixflow: the API at {base}, with the key in ZIXFLOW_API_KEY")
        yield ZixflowService(base, os.environ["ZIXFLOW_API_KEY"], sandbox=False)
        return
    from zixflow_queue.sandbox import SandboxClient  # noqa: PLC0415 - worker code, only for the sandbox

    port = free_port()
    rates = [arg for kind, rate in SANDBOX_FAULTS.items() for arg in ("--rate", f"{kind}={rate}")]
    argv = [sys.executable, "-m", "zixflow_queue.sandbox", "--port", str(port),
            "--api-key", SANDBOX_KEY, "--retry-after", str(RETRY_AFTER), "--seed", "7",
            *rates]  # fmt: skip
    env = {}
    if replies is not None:  # the token through the environment: not for `ps` to show
        argv += ["--reply-url", replies.service_url + EVENTS_PATH, "--reply-rate",
                 str(REPLY_RATE), "--reply-delay", REPLY_DELAY]  # fmt: skip
        env["ZQ_ZIXFLOW_WEBHOOK_TOKEN"] = replies.token
    command = Command(argv, workdir / "sandbox.log", env)
    with running([command]) as (child,):
        url = f"http://127.0.0.1:{port}"
        wait_ready(child, SandboxClient(url).healthy, "the sandbox", command.log)
        faults = ", ".join(f"{kind} {rate:.0%}" for kind, rate in SANDBOX_FAULTS.items())
        replying = f"; {REPLY_RATE:.0%} of recipients tap a button, {REPLY_DELAY} s later"
        note(f"Zixflow: the sandbox on port {port}, misbehaving now and then ({faults})"
             + (replying if replies else ""))  # fmt: skip
        yield ZixflowService(url, SANDBOX_KEY, sandbox=True)


@contextmanager
def http_service(replies: Replies, env: Mapping[str, str], workdir: Path) -> Iterator[None]:
    """`zixflow-queue serve` on the replies' port, taking Zixflow's events with their token."""
    argv = [sys.executable, "-m", "zixflow_queue", "serve", "--port", str(replies.port),
            "--no-access-log"]  # fmt: skip
    tokens = {"ZQ_API_TOKENS": secrets.token_urlsafe(24),
              "ZQ_ZIXFLOW_WEBHOOK_TOKEN": replies.token}  # fmt: skip
    command = Command(argv, workdir / "service.log", {**env, **tokens})
    with running([command]) as (child,):
        health = replies.service_url + "/healthz"
        wait_ready(child, lambda: _answers(health), "the HTTP service", command.log)
        note(f"HTTP service: {replies.service_url}, taking the sandbox's replies at {EVENTS_PATH}")
        yield


def _answers(url: str) -> bool:
    """Whether a GET of `url` answers 200 (within a second)."""
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    try:
        with opener.open(url, timeout=1) as answer:
            return bool(answer.status == 200)
    except (OSError, http.client.HTTPException):
        return False


@contextmanager
def worker_processes(count: int, env: Mapping[str, str], workdir: Path) -> Iterator[None]:
    """`count` workers (`celery -A worker worker`), started together and stopped together."""
    # Node names of their own, and no mingle or gossip: they never talk to other workers.
    commands = [
        Command([sys.executable, "-m", "celery", "-A", "worker", "worker", "--loglevel=INFO",
                 "-n", f"demo{index}-{secrets.token_hex(3)}@%h", "--without-mingle",
                 "--without-gossip"], workdir / f"worker-{index}.log", env)
        for index in range(count)
    ]  # fmt: skip
    with running(commands) as children:
        for index, (child, command) in enumerate(zip(children, commands, strict=True)):
            wait_ready(child, _logged_ready(command.log), f"worker {index}", command.log)
        note(f"Workers: {count} processes, on a queue of their own ({env['ZQ_QUEUE']})")
        yield


def _logged_ready(log: Path) -> Callable[[], bool]:
    return lambda: " ready." in log.read_text(errors="replace")
