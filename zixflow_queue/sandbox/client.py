"""Drives a sandbox running in another process, through its control endpoints.

Standard library only (urllib), so that `pip install .` alone runs the demo against the sandbox.
"""

from __future__ import annotations

import http.client
import json
import urllib.error
import urllib.request
from typing import Any

from zixflow_queue.sandbox.faults import FaultPlan
from zixflow_queue.sandbox.replies import ReplyPlan

CONTROL_ERRORS = (OSError, http.client.HTTPException, ValueError)
"""What a control call raises when the sandbox does not answer, or answers with an error
(`urllib.error.URLError` and `HTTPError` are OSErrors; a garbled answer a ValueError)."""


class SandboxClient:
    """Configure, inspect and reset a sandbox at `url`."""

    def __init__(self, url: str, timeout: float = 10.0) -> None:
        self.url = url.rstrip("/")
        self._timeout = timeout
        # The sandbox is a local test double: never reach it through a proxy from the environment.
        self._opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))

    def __enter__(self) -> SandboxClient:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    def close(self) -> None:
        """Nothing to release: each call opens and closes its own connection."""

    def configure(self, plan: FaultPlan) -> None:
        """Replace the fault plan."""
        self._call("PUT", "faults", plan.to_dict())

    def configure_replies(self, plan: ReplyPlan) -> None:
        """Replace the reply plan: where the recipients' replies go, and how many."""
        self._call("PUT", "replies", plan.to_dict())

    def requests(self, since: int = 0) -> list[dict[str, Any]]:
        """Requests received so far (from index `since`)."""
        received: list[dict[str, Any]] = self._call("GET", f"requests?since={since}")
        return received

    def stats(self) -> dict[str, Any]:
        """Totals of what was received and answered."""
        totals: dict[str, Any] = self._call("GET", "stats")
        return totals

    def reset(self) -> None:
        """Forget what was received and what was scripted; keep latency and rates."""
        self._call("POST", "reset")

    def health(self) -> dict[str, Any]:
        """The sandbox's health answer; raises one of `CONTROL_ERRORS` if it does not answer."""
        answer: dict[str, Any] = self._call("GET", "health")
        return answer

    def healthy(self) -> bool:
        """Whether the sandbox answers."""
        try:
            self.health()
        except CONTROL_ERRORS:
            return False
        return True

    def _call(self, method: str, path: str, payload: object = None) -> Any:
        """One control request; an HTTP error status raises `urllib.error.HTTPError`."""
        body = b"" if payload is None else json.dumps(payload).encode()
        request = urllib.request.Request(
            f"{self.url}/_sandbox/{path}",
            data=None if method == "GET" else body,
            method=method,
            headers={} if payload is None else {"Content-Type": "application/json"},
        )
        try:
            with self._opener.open(request, timeout=self._timeout) as response:
                return json.loads(response.read())
        except urllib.error.HTTPError as error:
            error.close()  # it holds the answer's connection open
            raise
