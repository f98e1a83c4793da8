"""The worker's side of the job record: claims and verdicts, each one atomic Lua call."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from enum import StrEnum
from importlib.resources import files
from typing import Any

import redis

from producer import keys
from worker.settings import WorkerSettings


def load_script(client: redis.Redis, name: str) -> Callable[..., Any]:
    """A Lua script shipped with the worker, registered on `client`."""
    return client.register_script(files("worker.scripts").joinpath(f"{name}.lua").read_text())


class ClaimResult(StrEnum):
    """What a claim attempt found."""

    CLAIMED = "claimed"
    MISSING = "missing"
    DONE = "done"
    BUSY = "busy"
    LATER = "later"
    DEFERRED = "deferred"


@dataclass(frozen=True, slots=True)
class Claim:
    """The answer to a claim: only CLAIMED carries a message to send."""

    result: ClaimResult
    message: str = ""
    attempt: int = 0
    """Attempts so far, this one included, since the job was queued or last replayed."""
    wait: float = 0.0
    reclaimed: bool = False


class Verdict(StrEnum):
    """How one send ends for the job."""

    SENT = "sent"
    RETRY = "retry"
    FAILED = "failed"


class JobRecords:
    """Claims jobs for sending and records what became of each send."""

    def __init__(self, client: redis.Redis, settings: WorkerSettings, worker_id: str) -> None:
        self._client = client
        self._claim = load_script(client, "claim")
        self._finish = load_script(client, "finish")
        self._settings = settings
        self.worker_id = worker_id
        self._claim_args = [
            worker_id,
            settings.lease_seconds,
            settings.phone_rate,
            settings.phone_burst,
            json.dumps(settings.phone_rates),
            settings.recipient_interval,
            settings.recipient_burst,
            settings.max_rate_wait,
            keys.PREFIX,
            settings.record_ttl,
        ]

    def claim(self, job_id: str) -> Claim:
        """Take the job for one send, if it is due, free and within its rate limits."""
        reply = self._claim(
            keys=[keys.job(job_id), keys.LEASES, keys.SCHEDULE, keys.events(job_id)],
            args=[job_id, *self._claim_args],
        )
        result = ClaimResult(reply[0])
        if result is not ClaimResult.CLAIMED:
            return Claim(result)
        return Claim(
            result,
            message=reply[1],
            attempt=int(reply[2]),
            wait=float(reply[3]),
            reclaimed=reply[4] == 1,
        )

    def postpone(self, job_ids: Sequence[str]) -> None:
        """Hand jobs back to the schedule, due now, for another worker to take."""
        if job_ids:
            self._client.zadd(keys.SCHEDULE, dict.fromkeys(job_ids, time.time()), nx=True)

    def finish(
        self,
        job_id: str,
        verdict: Verdict,
        *,
        outcome: str,
        error: str = "",
        result: dict[str, Any] | None = None,
        delay: float = 0.0,
        dead_letter: dict[str, Any] | None = None,
    ) -> str:
        """Record a send's verdict; returns what the record said (e.g. 'already sent')."""
        reply: str = self._finish(
            keys=[
                keys.job(job_id),
                keys.LEASES,
                keys.SCHEDULE,
                keys.events(job_id),
                keys.DEAD,
                keys.DEAD_INDEX,
                keys.STATS,
                keys.UNFINISHED,
            ],
            args=[
                job_id,
                self.worker_id,
                verdict.value,
                error,
                json.dumps(result) if result is not None else "",
                delay,
                self._settings.record_ttl,
                json.dumps(dead_letter) if dead_letter is not None else "",
                outcome,
            ],
        )
        return reply
