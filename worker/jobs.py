"""The worker's side of the job records: take, claim, finish and give back, many jobs a call.

Each method runs one Lua script; its arguments are built here and nowhere else.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from redis.asyncio import Redis as AsyncRedis

from producer import metrics
from producer.deadletters import DeadLetter
from producer.envelope import WAKEUP_TTL_MS, EnvelopeBuilder
from producer.store import load_script
from worker.settings import WorkerSettings

PACING = 0.9
"""Sends are paced at 90% of each phone id's rate: a send reaches Zixflow a little after its
slot, by a varying delay, and the margin keeps the busiest second at the receiving end within
the configured rate."""


class Ending(StrEnum):
    """How one delivery of a job ended."""

    SENT = "sent"
    RETRY = "retry"
    FAILED = "failed"
    DEFERRED = "deferred"
    """A rate limit put it back on the schedule."""
    POSTPONED = "postponed"
    """The worker stopped, or lost Redis, before sending it: given back for another."""
    FINISHED = "finished"
    """It was already sent, failed or canceled."""
    BUSY = "busy"
    """Another live worker is sending it."""
    LATER = "later"
    """It is not due yet: the schedule brings it back."""
    MISSING = "missing"
    """Its record is gone (expired)."""
    BROKEN = "broken"
    """Its record could not be read: it failed and was dead-lettered."""
    UNRECORDED = "unrecorded"
    """Sent or not, its verdict could not be written: another worker takes the job over."""


VERDICTS = (Ending.SENT, Ending.RETRY, Ending.FAILED)
"""The endings a send's outcome can have."""


@dataclass(frozen=True, slots=True)
class Claim:
    """The answer to a claim: a message to send, or the ending that makes a send needless."""

    ending: Ending | None
    """None when the job is claimed for a send (or `exhausted`)."""
    message: str = ""
    attempt: int = 0
    """Attempts so far, this one included, since the job was queued or last replayed."""
    wait: float = 0.0
    reclaimed: bool = False
    exhausted: bool = False
    """The attempt budget is spent (by sends of workers that died): fail it, send nothing."""
    trace: str = ""
    """The W3C traceparent stored with the job by a traced enqueue ('' when none)."""


@dataclass(frozen=True, slots=True)
class Finish:
    """One send's verdict, as written to its job record."""

    job_id: str
    attempt: int
    """The claim's attempt: a verdict written twice for one claim counts once."""
    verdict: Ending
    outcome: str
    error: str = ""
    result: dict[str, Any] | None = None
    delay: float = 0.0
    dead_letter: dict[str, Any] | None = None
    seconds: float | None = None
    """How long the HTTP send took (None when nothing was sent)."""

    def arguments(self) -> tuple[str, ...]:
        """The nine values finish.lua reads for this send."""
        return (
            self.job_id,
            str(self.attempt),
            self.verdict.value,
            self.error,
            json.dumps(self.result) if self.result is not None else "",
            repr(self.delay),
            json.dumps(self.dead_letter) if self.dead_letter is not None else "",
            self.outcome,
            "" if self.seconds is None else repr(self.seconds),
        )


def worker_script(client: AsyncRedis, name: str) -> Callable[..., Awaitable[Any]]:
    """A Lua script shipped with the worker, registered on `client`."""
    return load_script(client, "worker.scripts", name)


TAKE_WAKEUPS = 4
"""The most wake-ups a task publishes for a backlog, so that it spreads over workers fast."""


class Wakeups:
    """Wake-ups for this deployment's workers: the scripts push them onto the queue when it
    lives in the records' Redis; else they are pushed here, onto the broker's own Redis."""

    def __init__(self, settings: WorkerSettings, broker: AsyncRedis | None) -> None:
        self.queue = "" if broker is not None else settings.queue
        """The queue key the scripts push onto ('' when the broker is another Redis)."""
        self._name = settings.queue
        self._broker = broker
        self._envelopes = EnvelopeBuilder(settings.queue)

    def arguments(self) -> list[str]:
        """What a script makes its task messages from: the template and a base for ids."""
        return [self._envelopes.template, self._envelopes.ids()]

    async def publish(self, count: int) -> None:
        """Push the wake-ups a script said are due, when the broker is another Redis."""
        if count and self._broker is not None:
            await self._broker.lpush(self._name, *(self._envelopes.build() for _ in range(count)))


class JobRecords:
    """Takes, claims, finishes and gives back one worker's jobs."""

    def __init__(
        self,
        client: AsyncRedis,
        settings: WorkerSettings,
        worker_id: str,
        wakeups: Wakeups,
    ) -> None:
        self._client = client
        self._settings = settings
        self._worker = worker_id
        self._keys = keys = settings.keys
        self._held = keys.held(worker_id)
        self._wakeups = wakeups
        self._take = worker_script(client, "take")
        self._claim = worker_script(client, "claim")
        self._finish = worker_script(client, "finish")
        self._release = worker_script(client, "release")
        self._claim_head = _claim_arguments(settings, worker_id)
        self._finish_head = _finish_arguments(settings, worker_id)

    @property
    def worker(self) -> str:
        """This worker's id."""
        return self._worker

    async def take(self, count: int) -> list[str]:
        """Take up to `count` ready jobs into this worker's held set."""
        keys = self._keys
        woken, *job_ids = await self._take(
            keys=[keys.ready, self._held, keys.workers, keys.wakeup, self._wakeups.queue],
            args=[self._worker, count, self._settings.heartbeat_timeout, WAKEUP_TTL_MS,
                  TAKE_WAKEUPS, *self._wakeups.arguments()],
        )  # fmt: skip
        await self._wakeups.publish(woken)
        return list(job_ids)

    async def claim(self, job_ids: Sequence[str]) -> list[Claim]:
        """Claim held jobs for one send each, if due, free and within their rate limits."""
        keys = self._keys
        replies = await self._claim(
            keys=[keys.schedule, self._held, keys.workers, keys.unfinished, keys.dead,
                  keys.dead_index, keys.stats, keys.deferrals],
            args=[*self._claim_head, *job_ids],
        )  # fmt: skip
        return [_claim_from(reply) for reply in replies]

    async def finish(self, sends: Sequence[Finish]) -> list[str]:
        """Record sends' verdicts; returns what each record said (e.g. 'already sent')."""
        keys = self._keys
        args = list(self._finish_head)
        for send in sends:
            args += send.arguments()
        replies: list[str] = await self._finish(
            keys=[self._held, keys.schedule, keys.dead, keys.dead_index, keys.stats,
                  keys.unfinished, keys.events_ready],
            args=args,
        )  # fmt: skip
        return replies

    async def release(self, job_ids: Sequence[str]) -> list[None]:
        """Give held jobs back to the front of the ready list, for any worker to take."""
        keys = self._keys
        woken, _ = await self._release(
            keys=[self._held, keys.ready, keys.wakeup, self._wakeups.queue],
            args=[WAKEUP_TTL_MS, *self._wakeups.arguments(), *job_ids],
        )
        await self._wakeups.publish(woken)
        return [None] * len(job_ids)

    async def reject(self, items: Sequence[str]) -> None:
        """Drop what the ready list held that is not a job id, keeping it as a dead letter."""
        keys = self._keys
        letters = [DeadLetter.for_poison("not a job id, on the ready list", item) for item in items]
        async with self._client.pipeline(transaction=True) as pipe:
            pipe.zrem(self._held, *items)
            pipe.hset(keys.dead, mapping={e.id: json.dumps(e.as_dict()) for e in letters})
            pipe.zadd(keys.dead_index, {letter.id: letter.at for letter in letters})
            await pipe.execute()

    async def leave(self) -> None:
        """Sign off: the jobs this worker still holds are taken over at another's next tick."""
        await self._client.zadd(self._keys.workers, {self._worker: 0})


def _claim_arguments(settings: WorkerSettings, worker_id: str) -> list[str | float | int]:
    """claim.lua's arguments before the job ids: who claims, the budget, limits and key
    prefixes."""
    keys = settings.keys
    intervals = {phone: 1 / (rate * PACING) for phone, rate in settings.phone_rates.items()}
    return [
        worker_id, settings.max_attempts, settings.record_ttl, keys.job.prefix,
        keys.history.prefix, 1 / (settings.phone_rate * PACING), settings.phone_burst,
        json.dumps(intervals), settings.recipient_interval, settings.recipient_burst,
        settings.max_rate_wait, keys.phone_pace.prefix, keys.phone_deferred.prefix,
        keys.recipient_pace.prefix, keys.recipient_deferred.prefix, keys.held.prefix,
    ]  # fmt: skip


def _finish_arguments(settings: WorkerSettings, worker_id: str) -> list[str | int]:
    """finish.lua's arguments before the sends: who finishes, where events and counts go."""
    keys = settings.keys
    return [
        worker_id, settings.record_ttl, keys.job.prefix, keys.history.prefix,
        settings.callback_url or "", keys.event.prefix, keys.offers.prefix,
        keys.histogram.prefix, keys.series.prefix, json.dumps(metrics.SEND_SECONDS_BUCKETS),
        json.dumps(metrics.LATENCY_SECONDS_BUCKETS),
    ]  # fmt: skip


def _claim_from(reply: list[Any]) -> Claim:
    kind = reply[0]
    if kind == "claimed":
        return Claim(None, reply[1], int(reply[2]), float(reply[3]), reply[4] == 1, trace=reply[5])
    if kind == "exhausted":
        return Claim(None, attempt=int(reply[1]), exhausted=True)
    return Claim(Ending(kind))
