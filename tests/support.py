"""Helpers the tests share: polling with a deadline, and real worker processes."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TypeVar

T = TypeVar("T")

SANDBOX_KEY = "test-key-5f1d0c"
"""The API key the tests' sandbox expects (a throwaway)."""


def wait_until(
    predicate: Callable[[], T], *, timeout: float = 30.0, interval: float = 0.05, what: str = ""
) -> T:
    """Poll `predicate` until it returns something truthy; fail the test at the deadline."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what or predicate}")
        time.sleep(interval)


class WorkerProcess:
    """One `celery -A worker worker` process, started from a neutral directory."""

    def __init__(self, env: Mapping[str, str], log_path: Path, *extra_args: str) -> None:
        self.log_path = log_path
        self._log = log_path.open("ab")
        command = [
            sys.executable, "-m", "celery", "-A", "worker", "worker", "--loglevel=INFO",
            "--without-mingle", "--without-gossip", *extra_args,
        ]  # fmt: skip
        self.process = subprocess.Popen(
            command,
            env={**os.environ, **env},
            cwd=log_path.parent,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    def log_text(self) -> str:
        """Everything the worker has logged so far."""
        return self.log_path.read_text(errors="replace")

    def wait_ready(self, timeout: float = 30.0) -> WorkerProcess:
        """Block until the worker logs that it is ready to take tasks."""
        wait_until(
            lambda: " ready." in self.log_text() or self.process.poll() is not None,
            timeout=timeout,
            what="the worker to be ready",
        )
        if self.process.poll() is not None:
            raise AssertionError(f"worker exited early:\n{self.log_text()[-3000:]}")
        return self

    def kill(self) -> None:
        """SIGKILL the worker and everything it started."""
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait(timeout=10)
        self._log.close()

    def terminate(self, timeout: float = 60.0) -> int:
        """SIGTERM (a warm shutdown) and wait for the exit code."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        try:
            return self.process.wait(timeout=timeout)
        finally:
            self.kill()


def wire_message(to: str = "919876543210", **overrides: object) -> dict[str, object]:
    """A valid reply-button message in the wire shape, with top-level fields overridden."""
    message: dict[str, object] = {
        "to": to,
        "phoneId": "1234567890",
        "type": "interactive",
        "interactive": {
            "type": "button",
            "body": {"text": "Confirm your order #42?"},
            "action": {
                "buttons": [
                    {"type": "reply", "reply": {"id": "yes", "title": "Yes"}},
                    {"type": "reply", "reply": {"id": "no", "title": "No"}},
                ]
            },
        },
    }
    message.update(overrides)
    return message
