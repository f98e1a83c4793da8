"""Helpers the tests share: polling, worker processes, messages, job states, the sandbox."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from collections import defaultdict
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, TypeVar

import requests

from producer import JobStatus, Producer
from zixflow_queue.sandbox.server import SEND_PATH

T = TypeVar("T")

SANDBOX_KEY = "test-key-5f1d0c"
"""The API key the tests' sandbox expects (a throwaway)."""
BEARER = f"Bearer {SANDBOX_KEY}"
"""The Authorization header the tests' sandbox accepts."""


def wait_until(
    predicate: Callable[[], T | None],
    *,
    timeout: float = 30.0,
    interval: float = 0.05,
    what: str = "",
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


def wire_messages(count: int, first: int = 0) -> list[dict[str, object]]:
    """`count` valid messages to distinct recipients, 919800000000 + `first` onwards."""
    return [wire_message(to=f"9198{first + n:08d}") for n in range(count)]


def final_status(producer: Producer, job_id: str, timeout: float = 30) -> JobStatus:
    """Poll a job until it is sent or failed."""

    def finished() -> JobStatus | None:
        status = producer.get_status(job_id)
        return status if status is not None and status.final else None

    return wait_until(finished, timeout=timeout, what=f"job {job_id} to finish")


def all_final(producer: Producer, job_ids: list[str]) -> bool:
    """Whether every one of the jobs is sent or failed."""
    return all(s is not None and s.final for s in producer.get_statuses(job_ids))


def states(producer: Producer, job_ids: list[str]) -> dict[str, int]:
    """How many of the jobs are in each state ("missing" for no record)."""
    counts: dict[str, int] = defaultdict(int)
    for status in producer.get_statuses(job_ids):
        counts[status.state if status else "missing"] += 1
    return dict(counts)


def table_rows(table: str) -> dict[str, str]:
    """A printed two-column table (cells split by two or more spaces) as {label: value}."""
    cells = (re.split(r"\s{2,}", line.strip(), maxsplit=1) for line in table.splitlines())
    return {cell[0]: cell[1] for cell in cells if len(cell) == 2}


def send(
    http: requests.Session,
    url: str,
    message: Any = None,
    *,
    authorization: str | None = BEARER,
    job_id: str = "job-1",
    data: bytes | None = None,
    timeout: float = 10,
) -> requests.Response:
    """POST one message (or raw bytes) to the send endpoint of the sandbox at `url`."""
    headers = {"Content-Type": "application/json", "X-Request-ID": job_id}
    if authorization is not None:
        headers["Authorization"] = authorization
    body = data if data is not None else json.dumps(message or wire_message()).encode()
    return http.post(url + SEND_PATH, data=body, headers=headers, timeout=timeout)
