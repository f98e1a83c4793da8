"""What the sandbox answers: Zixflow's documented shapes, and the faults it can be told to play."""

from __future__ import annotations

import json
import math
import random
import secrets
import threading
from collections import deque
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

OK = "ok"
FAULTS: Mapping[str, tuple[int, str]] = {
    "error500": (500, "(#2) Service temporarily unavailable :: Server is temporarily "
                      "unavailable. Please retry after some time."),
    "throttle429": (429, "(#130429) Rate limit hit :: Cloud API message throughput has been "
                         "reached."),
    "window": (400, "(#131047) Re-engagement message :: Message failed to send because more "
                    "than 24 hours have passed since the customer last replied to this number."),
    "invalid": (400, "Invalid data Provided"),
    "unauthorised": (401, "Unauthorised"),
}  # fmt: skip
"""Answers with an HTTP status and Zixflow's message; `drop` and `slow` are played by the server."""

KINDS = frozenset({OK, "drop", "slow", *FAULTS})


@dataclass(frozen=True)
class FaultPlan:
    """How the sandbox misbehaves: added latency, random faults, and scripts per recipient."""

    latency_ms: float = 0.0
    seed: int | None = None
    rates: Mapping[str, float] = field(default_factory=dict)
    retry_after: float = 1.0
    slow_seconds: float = 5.0
    script: Mapping[str, Sequence[str]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for name in ("latency_ms", "retry_after", "slow_seconds"):
            value = getattr(self, name)
            if not _number(value) or not 0 <= value < math.inf:
                raise ValueError(f"{name} must be a finite number of at least 0, not {value!r}")
        if not isinstance(self.seed, int | None):
            raise ValueError(f"seed must be an integer or null, not {self.seed!r}")
        if not isinstance(self.rates, Mapping) or not isinstance(self.script, Mapping):
            raise ValueError("rates and script must be mappings (JSON objects)")
        if not all(_kinds(kinds) for kinds in self.script.values()):
            raise ValueError("each script must be a list of answer kinds")
        unknown = (set(self.rates) | {k for s in self.script.values() for k in s}) - KINDS
        if unknown:
            raise ValueError(f"unknown answer kinds {sorted(unknown)}; known: {sorted(KINDS)}")
        rates = self.rates.values()
        if not all(_number(rate) and 0 <= rate <= 1 for rate in rates) or sum(rates) > 1:
            raise ValueError("fault rates must be between 0 and 1 and add up to at most 1")

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> FaultPlan:
        """A plan from its JSON form."""
        return cls(**data)

    def to_dict(self) -> dict[str, Any]:
        """The plan's JSON form."""
        return asdict(self)


def _number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _kinds(value: object) -> bool:
    return (
        isinstance(value, Sequence)
        and not isinstance(value, str)
        and all(isinstance(kind, str) for kind in value)
    )


class Faults:
    """Picks the answer for each request, following a plan (thread-safe)."""

    def __init__(self, plan: FaultPlan) -> None:
        self._lock = threading.Lock()
        self.plan = plan
        self._rng = random.Random(plan.seed)
        self._scripts = {to: deque(kinds) for to, kinds in plan.script.items()}

    def pick(self, to: str) -> str:
        """The kind of answer for the next request to this recipient."""
        with self._lock:
            script = self._scripts.get(to)
            if script:
                return script.popleft()
            if not self.plan.rates:
                return OK
            draw = self._rng.random()
        for kind, rate in self.plan.rates.items():
            if draw < rate:
                return kind
            draw -= rate
        return OK


def failure_body(kind: str) -> tuple[int, bytes]:
    """The HTTP status and JSON body of a failure answer."""
    status, message = FAULTS[kind]
    return status, json.dumps({"status": False, "message": message}).encode()


def success_body(submission_status: bool) -> bytes:
    """Zixflow's success body; with submissionStatus it names the campaign and message."""
    if not submission_status:
        return b'{"status":true,"message":"Message sent successfully"}'
    return json.dumps({
        "status": True, "message": "WhatsApp sent successfully!",
        "campaignId": secrets.token_hex(12), "messageId": secrets.token_hex(12),
    }).encode()  # fmt: skip
