"""`zixflow-queue demo` as a user runs it: the summary, exit code 0, and no process left behind."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import redis

from producer import Producer
from producer.settings import ProducerSettings
from producer.store import Store
from tests.support import states, table_rows, wait_until, wire_message, wire_messages

pytestmark = pytest.mark.integration

COMMAND = str(Path(sys.executable).with_name("zixflow-queue"))
NOTHING_LISTENS = "redis://127.0.0.1:1/0"


class Demo:
    """One `zixflow-queue demo` process in a session of its own, output in files."""

    def __init__(
        self, tmp_path: Path, redis_url: str, *args: str, path: str | None = None,
        env: dict[str, str] | None = None,
    ) -> None:  # fmt: skip
        # Every process the demo starts inherits this variable, whatever its process group.
        self.marker = f"ZQ_DEMO_TEST={uuid.uuid4().hex}"
        environ = {k: v for k, v in os.environ.items() if not k.startswith("ZIXFLOW_")}
        environ.update(env or {}, REDIS_URL=redis_url, ZQ_DEMO_TEST=self.marker.partition("=")[2])
        if path is not None:
            environ["PATH"] = path
        self.out, self.err = tmp_path / "stdout", tmp_path / "stderr"
        with self.out.open("wb") as out, self.err.open("wb") as err:
            self.process = subprocess.Popen(
                [COMMAND, "demo", *args],
                stdout=out,
                stderr=err,
                env=environ,
                start_new_session=True,
            )

    def finish(self, timeout: float = 240) -> tuple[int, str, str]:
        """Wait for the exit; the exit code, stdout and stderr."""
        code = self.process.wait(timeout=timeout)
        return code, self.out.read_text(), self.err.read_text()

    def survivors(self) -> list[int]:
        """Pids of live processes started by the demo (or the demo itself)."""
        found = []
        for entry in Path("/proc").iterdir():
            try:
                environ = (entry / "environ").read_bytes()
            except OSError:  # not a process, gone, or not ours
                continue
            if self.marker.encode() in environ.split(b"\0"):
                found.append(int(entry.name))
        return found

    def kill(self) -> None:
        """Clean up after a failed test."""
        for pid in self.survivors():
            os.kill(pid, signal.SIGKILL)
        self.process.wait(timeout=10)


StartDemo = Callable[..., Demo]


@pytest.fixture
def run_demo(tmp_path: Path) -> Iterator[StartDemo]:
    """Start demos; any still running after the test is killed, with all it started."""
    started: list[Demo] = []

    def start(
        redis_url: str, *args: str, path: str | None = None, env: dict[str, str] | None = None
    ) -> Demo:
        started.append(Demo(tmp_path, redis_url, *args, path=path, env=env))
        return started[-1]

    yield start
    for demo in started:
        demo.kill()


def redis_mode_path(mode: str) -> str | None:
    """PATH for the demo: with redis-server on it, or (for the embedded server) only the venv."""
    if mode == "embedded":
        return str(Path(sys.executable).parent)
    if shutil.which("redis-server") is None:
        pytest.skip("redis-server is not installed")
    return None


@pytest.mark.parametrize("mode", ["REDIS_URL", "redis-server", "embedded"])
def test_demo_sends_reports_and_cleans_up(
    run_demo: StartDemo, redis_url: str, real_redis: redis.Redis, mode: str
) -> None:
    count = "60" if mode != "embedded" else "30"
    if mode == "REDIS_URL":
        demo = run_demo(redis_url, "--count", count)
    else:
        demo = run_demo(NOTHING_LISTENS, "--count", count, path=redis_mode_path(mode))

    code, out, err = demo.finish()
    assert code == 0, err
    expected_note = {"REDIS_URL": f"Redis: {redis_url}", "redis-server": "started redis-server",
                     "embedded": "embedded fakeredis server"}[mode]  # fmt: skip
    assert expected_note in err
    rows = table_rows(out)
    assert rows["messages"] == count
    assert int(rows["sent"]) + int(rows["failed"]) == int(count)
    assert int(rows["sent"]) > int(count) // 2
    for name in ("retried (more than one attempt)", "HTTP attempts", "throughput"):
        assert name in rows
    assert "latency p50 / p95 (enqueued to done)" in rows
    assert "NOT FINISHED" not in out
    # The sandbox's recipients replied through the service; the demo's app got every event.
    replies, finished = int(rows["replies (buttons tapped)"]), int(count)
    assert 0 < replies < int(rows["sent"])
    assert int(rows["status events delivered"]) >= finished + replies
    assert "webhook-signature: v1," in out and '"type":"message.replied"' in out
    wait_until(lambda: not demo.survivors(), timeout=5, what="the demo's processes to end")
    # Sharing the tests' Redis, the demo left nothing of its own in it.
    assert real_redis.keys("*demo-*") == []


def test_the_demo_never_touches_a_real_deployments_jobs(
    run_demo: StartDemo, redis_url: str, real_redis: redis.Redis
) -> None:
    """A deployment shares the database, with jobs waiting and no worker running."""
    settings = ProducerSettings(redis_url=redis_url, queue="shop", prefix=None)
    shop = Producer(settings, Store.connect(settings))
    waiting = shop.enqueue_many(wire_messages(30))
    scheduled = shop.enqueue(wire_message(), send_at=time.time() + 1)
    expiring = {settings.keys.wakeup}

    def keys_and_types() -> dict[str, str]:
        return {k: str(real_redis.type(k)) for k in real_redis.scan_iter("*") if k not in expiring}

    before = keys_and_types()
    queue_items = real_redis.llen("shop")

    # Even with the shop's own settings in the shell, the demo keeps to a namespace of its own.
    demo = run_demo(redis_url, "--count", "40", env={"ZQ_QUEUE": "shop", "ZQ_PREFIX": "zq:shop"})
    code, _, err = demo.finish()

    assert code == 0, err
    assert states(shop, waiting) == {"queued": 30}
    assert states(shop, [scheduled]) == {"scheduled": 1}
    assert real_redis.llen("shop") == queue_items
    assert real_redis.lrange(settings.keys.ready, 0, -1)[::-1] == waiting
    assert keys_and_types() == before  # every key of the shop is still there, nothing added


@pytest.fixture
def ctrl_c_not_ignored() -> Iterator[None]:
    """Demos started as from a terminal: a test run started in the background has SIGINT
    ignored, and its children would inherit that."""
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    yield
    signal.signal(signal.SIGINT, previous)


@pytest.mark.usefixtures("ctrl_c_not_ignored")
@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_interrupted_demo_leaves_no_process_behind(
    run_demo: StartDemo, redis_url: str, signum: int
) -> None:
    demo = run_demo(redis_url, "--count", "3000")
    wait_until(lambda: "Enqueued" in demo.err.read_text(), timeout=60, what="the demo to start")
    assert len(demo.survivors()) >= 4  # the demo, the sandbox and two workers

    os.killpg(demo.process.pid, signum)  # as Ctrl-C does: the foreground process group
    code, _, err = demo.finish(timeout=60)
    assert code == 130 and "interrupted" in err, err
    wait_until(lambda: not demo.survivors(), timeout=5, what="the demo's processes to end")
