"""The demo's child processes: each in a session of its own, stopped for sure on the way out."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path

STOP_TIMEOUT = 20.0
"""Seconds a child gets to stop after SIGTERM before its whole process group is killed."""


class DemoError(RuntimeError):
    """A part of the demo could not start."""


@contextmanager
def child_process(
    command: list[str], log: Path, env: Mapping[str, str] | None = None
) -> Iterator[subprocess.Popen[bytes]]:
    """Run `command` with its output in `log`; stop it and all it started when the block ends."""
    with log.open("wb") as output:
        # A session of its own: Ctrl-C reaches only the demo, which stops the children in order
        # (workers before the Redis they drain), and one killpg reaches a child's own children.
        child = subprocess.Popen(
            command, stdout=output, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
            env={**os.environ, **(env or {})}, start_new_session=True,
        )  # fmt: skip
        try:
            yield child
        finally:
            stop(child)


def stop(child: subprocess.Popen[bytes]) -> None:
    """SIGTERM the child's group, wait, then SIGKILL whatever of the group is left."""
    try:
        if child.poll() is None:
            _signal_group(child.pid, signal.SIGTERM)
            child.wait(timeout=STOP_TIMEOUT)
    except (subprocess.TimeoutExpired, KeyboardInterrupt):
        pass  # too slow, or a second Ctrl-C: no more waiting
    finally:
        _signal_group(child.pid, signal.SIGKILL)
        child.wait()


def _signal_group(pgid: int, signum: int) -> None:
    with contextlib.suppress(ProcessLookupError):  # the group is already empty
        os.killpg(pgid, signum)


def wait_ready(
    child: subprocess.Popen[bytes],
    ready: Callable[[], bool],
    what: str,
    log: Path,
    timeout: float = 60.0,
) -> None:
    """Poll `ready` until it holds; a child that exits or takes too long is a DemoError."""
    deadline = time.monotonic() + timeout
    while not ready():
        exited = child.poll() is not None
        if exited or time.monotonic() > deadline:
            problem = (
                f"exited (code {child.returncode})" if exited else f"not ready in {timeout:.0f} s"
            )
            tail = log.read_text(errors="replace").strip().splitlines()[-15:]
            raise DemoError(f"{what} {problem}; its last output:\n  " + "\n  ".join(tail))
        time.sleep(0.1)


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port
