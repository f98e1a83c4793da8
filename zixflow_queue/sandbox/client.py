"""Drives a sandbox running in another process, through its control endpoints."""

from __future__ import annotations

from typing import Any

import requests

from zixflow_queue.sandbox.faults import FaultPlan


class SandboxClient:
    """Configure, inspect and reset a sandbox at `url`."""

    def __init__(self, url: str, timeout: float = 10.0) -> None:
        self.url = url.rstrip("/")
        self._session = requests.Session()
        self._timeout = timeout

    def __enter__(self) -> SandboxClient:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    def close(self) -> None:
        """Close the client's connections."""
        self._session.close()

    def configure(self, plan: FaultPlan) -> None:
        """Replace the fault plan."""
        self._call("PUT", "faults", json=plan.to_dict())

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
        """The sandbox's health answer; raises requests' errors if it does not answer."""
        answer: dict[str, Any] = self._call("GET", "health")
        return answer

    def healthy(self) -> bool:
        """Whether the sandbox answers."""
        try:
            self.health()
        except requests.RequestException:
            return False
        return True

    def _call(self, method: str, path: str, **kwargs: Any) -> Any:
        response = self._session.request(
            method, f"{self.url}/_sandbox/{path}", timeout=self._timeout, **kwargs
        )
        response.raise_for_status()
        return response.json()
