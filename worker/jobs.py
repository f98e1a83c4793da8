"""The worker's side of the job record: claims and verdicts, atomic Lua calls on many jobs."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

import redis
from redis.asyncio import Redis as AsyncRedis

from producer import keys
from producer.store import load_script
from worker.settings import WorkerSettings


def worker_script(client: redis.Redis | AsyncRedis, name: str) -> Callable[..., Any]:
    """A Lua script shipped with the worker, registered on `client`."""
    return load_script(client, "worker.scripts", name)


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


@dataclass(frozen=True, slots=True)
class Finish:
    """One send's verdict, as written to its job record."""

    job_id: str
    attempt: int
    """The claim's attempt: a verdict written twice for one claim counts once."""
    verdict: Verdict
    outcome: str
    error: str = ""
    result: dict[str, Any] | None = None
    delay: float = 0.0
    dead_letter: dict[str, Any] | None = None

    def arguments(self) -> tuple[str, ...]:
        """The eight values finish.lua reads for this send."""
        return (
            self.job_id,
            str(self.attempt),
            self.verdict.value,
            self.error,
            json.dumps(self.result) if self.result is not None else "",
            repr(self.delay),
            json.dumps(self.dead_letter) if self.dead_letter is not None else "",
            self.outcome,
        )


class JobRecords:
    """Claims jobs for sending and records what became of each send, many per round trip."""

    def __init__(self, client: AsyncRedis, settings: WorkerSettings, worker_id: str) -> None:
        self._client = client
        self._claim = worker_script(client, "claim")
        self._finish = worker_script(client, "finish")
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
        self._finish_args = [worker_id, settings.record_ttl, keys.PREFIX]

    async def claim(self, job_ids: Sequence[str]) -> list[Claim]:
        """Take each job for one send, if it is due, free and within its rate limits."""
        replies = await self._claim(
            keys=[keys.LEASES, keys.SCHEDULE], args=[*self._claim_args, *job_ids]
        )
        return [_claim_from(reply) for reply in replies]

    async def finish(self, sends: Sequence[Finish]) -> list[str]:
        """Record sends' verdicts; returns what each record said (e.g. 'already sent')."""
        args = [*self._finish_args]
        for send in sends:
            args += send.arguments()
        replies: list[str] = await self._finish(
            keys=[keys.LEASES, keys.SCHEDULE, keys.DEAD, keys.DEAD_INDEX, keys.STATS,
                  keys.UNFINISHED],
            args=args,
        )  # fmt: skip
        return replies

    async def close(self) -> None:
        """Close the Redis connections."""
        await self._client.aclose()

    async def postpone(self, job_ids: Sequence[str]) -> None:
        """Hand jobs back to the schedule, due now, for another worker to take."""
        if job_ids:
            await self._client.zadd(keys.SCHEDULE, dict.fromkeys(job_ids, time.time()), nx=True)


def _claim_from(reply: list[Any]) -> Claim:
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
