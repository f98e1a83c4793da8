"""`zixflow-queue demo` as a user runs it: the summary, exit code 0, and no process left behind."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import redis

from tests.support import table_rows, wait_until

pytestmark = pytest.mark.integration

COMMAND = str(Path(sys.executable).with_name("zixflow-queue"))
NOTHING_LISTENS = "redis://127.0.0.1:1/0"


class Demo:
    """One `zixflow-queue demo` process in a session of its own, output in files."""

    def __init__(self, tmp_path: Path, redis_url: str, *args: str, path: str | None = None) -> None:
        # Every process the demo starts inherits this variable, whatever its process group.
        self.marker = f"ZQ_DEMO_TEST={uuid.uuid4().hex}"
        env = {key: value for key, value in os.environ.items() if not key.startswith("ZIXFLOW_")}
        env.update(REDIS_URL=redis_url, ZQ_DEMO_TEST=self.marker.partition("=")[2])
        if path is not None:
            env["PATH"] = path
        self.out, self.err = tmp_path / "stdout", tmp_path / "stderr"
        with self.out.open("wb") as out, self.err.open("wb") as err:
            self.process = subprocess.Popen(
                [COMMAND, "demo", *args], stdout=out, stderr=err, env=env, start_new_session=True
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

    def start(redis_url: str, *args: str, path: str | None = None) -> Demo:
        started.append(Demo(tmp_path, redis_url, *args, path=path))
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
    wait_until(lambda: not demo.survivors(), timeout=5, what="the demo's processes to end")
    # Sharing the tests' Redis, the demo left neither its queue nor its dead letters in it.
    assert real_redis.keys("*demo-*") == [] and real_redis.hlen("zq:dead") == 0


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_interrupted_demo_leaves_no_process_behind(
    run_demo: StartDemo, redis_url: str, signum: int
) -> None:
    demo = run_demo(redis_url, "--count", "3000")
    wait_until(lambda: "Enqueued" in demo.err.read_text(), timeout=60, what="the demo to start")
    assert len(demo.survivors()) >= 4  # the demo, the sandbox and two workers

    os.killpg(demo.process.pid, signum)  # as Ctrl-C does: the foreground process group
    code, _, err = demo.finish(timeout=60)
    assert code == 130 and "interrupted" in err
    wait_until(lambda: not demo.survivors(), timeout=5, what="the demo's processes to end")
