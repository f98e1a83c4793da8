"""The demo's child processes: each in a session of its own, stopped for sure on the way out."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path

STOP_TIMEOUT = 20.0
"""Seconds children get to stop after SIGTERM before what is left of them is killed."""


class DemoError(RuntimeError):
    """A part of the demo could not start."""


@dataclass(frozen=True)
class Command:
    """A program to run, where its output goes, and what it adds to the environment."""

    argv: list[str]
    log: Path
    env: Mapping[str, str] = field(default_factory=dict)


@contextmanager
def running(commands: Sequence[Command]) -> Iterator[list[subprocess.Popen[bytes]]]:
    """Start the commands together; when the block ends, stop them together."""
    with ExitStack() as logs:
        started: list[subprocess.Popen[bytes]] = []
        try:
            for command in commands:
                output = logs.enter_context(command.log.open("wb"))
                # A session of its own: Ctrl-C reaches only the demo, which stops the children
                # in order (workers before the Redis they use), and a killpg reaches all a
                # child started.
                started.append(subprocess.Popen(
                    command.argv, stdout=output, stderr=subprocess.STDOUT,
                    stdin=subprocess.DEVNULL, env={**os.environ, **command.env},
                    start_new_session=True,
                ))  # fmt: skip
            yield started
        finally:
            stop(started)


def stop(children: Sequence[subprocess.Popen[bytes]]) -> None:
    """SIGTERM each child's process group, wait, then SIGKILL whatever of them is left."""
    deadline = time.monotonic() + STOP_TIMEOUT
    try:
        for child in children:
            if child.poll() is None:
                _signal_group(child.pid, signal.SIGTERM)
        for child in children:
            child.wait(timeout=max(0.0, deadline - time.monotonic()))
    except (subprocess.TimeoutExpired, KeyboardInterrupt):
        pass  # too slow, or a second Ctrl-C: no more waiting
    finally:
        for child in children:
            _signal_group(child.pid, signal.SIGKILL)
        for child in children:
            child.wait()


def _signal_group(pgid: int, signum: int) -> None:
    with contextlib.suppress(ProcessLookupError):  # the group is already empty
        os.killpg(pgid, signum)


def wait_ready(
    child: subprocess.Popen[bytes], ready: Callable[[], bool], what: str, log: Path,
    timeout: float = 60.0,
) -> None:  # fmt: skip
    """Poll `ready` until it holds; a child that exits or takes too long is a DemoError."""
    deadline = time.monotonic() + timeout
    while not ready():
        exited = child.poll() is not None
        if exited or time.monotonic() > deadline:
            problem = f"exited ({child.returncode})" if exited else f"not ready in {timeout:.0f}s"
            tail = log.read_text(errors="replace").strip().splitlines()[-15:]
            raise DemoError(f"{what} {problem}; its last output:\n  " + "\n  ".join(tail))
        time.sleep(0.1)


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port
