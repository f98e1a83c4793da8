"""Delivering jobs: claim → send → decide → record, many jobs at once on one event loop.

ZQ_SEND_CONCURRENCY sender coroutines take jobs from one queue. Claims and verdicts of jobs
that reach Redis together share one Lua call (`Batcher`), so a busy worker makes a few round
trips per batch of sends instead of two per send.
"""

from __future__ import annotations

import asyncio
import json
import logging
import random
import threading
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Sequence
from typing import TypeVar

import redis

from producer.deadletters import DeadLetter, DeadLetters
from producer.errors import ValidationError
from producer.message import parse_message
from worker.batching import Batcher
from worker.jobs import Claim, ClaimResult, Finish, JobRecords, Verdict
from worker.outcomes import Outcome, OutcomeKind
from worker.policy import decide
from worker.settings import WorkerSettings
from worker.zixflow import ZixflowClient

log = logging.getLogger(__name__)
T = TypeVar("T")

POSTPONED = "postponed"


class Courier:
    """Sends jobs through Zixflow and records each one's fate in its job record.

    Jobs wait in a queue for one of ZQ_SEND_CONCURRENCY sender coroutines. Once the worker
    stops, jobs still waiting go back to the schedule; `close` abandons sends in flight to
    their claims.
    """

    def __init__(
        self,
        records: JobRecords,
        client: ZixflowClient,
        dead_letters: DeadLetters,
        settings: WorkerSettings,
        stopping: threading.Event,
    ) -> None:
        self._records = records
        self._client = client
        self._dead_letters = dead_letters
        self._settings = settings
        self._stopping = stopping
        self._waiting: asyncio.Queue[tuple[str, asyncio.Future[str]]] = asyncio.Queue()
        self._senders: list[asyncio.Task[None]] = []
        self._claims = Batcher(records.claim)
        self._finishes = Batcher(records.finish)
        self._rng = random.Random()

    async def deliver_all(self, job_ids: Sequence[str]) -> dict[str, int]:
        """Deliver a batch; returns how many ended each way.

        Jobs not started when the worker stops go back to the schedule. If Redis is lost,
        the jobs already sending are recorded first, then the error is raised.
        """
        if not self._senders:
            self._senders = [
                asyncio.create_task(self._sender()) for _ in range(self._settings.send_concurrency)
            ]
        futures = [self._enqueue(job_id) for job_id in job_ids]
        ends = await asyncio.gather(*futures, return_exceptions=True)
        postponed = [job_id for job_id, end in zip(job_ids, ends, strict=True) if end == POSTPONED]
        await self._records.postpone(postponed)
        counts: Counter[str] = Counter()
        for end in ends:
            if isinstance(end, BaseException):
                raise end
            counts[end] += 1
        return dict(counts)

    def stop(self) -> None:
        """Postpone every job still waiting for a sender (call on the loop, once stopping)."""
        while not self._waiting.empty():
            _, future = self._waiting.get_nowait()
            _settle(future, POSTPONED)

    async def close(self) -> None:
        """Abandon sends in flight to their claims; close the HTTP and Redis connections."""
        for sender in self._senders:
            sender.cancel()
        await asyncio.gather(*self._senders, return_exceptions=True)
        await self._client.close()
        await self._records.close()

    def _enqueue(self, job_id: str) -> asyncio.Future[str]:
        future: asyncio.Future[str] = asyncio.get_running_loop().create_future()
        if self._stopping.is_set():
            future.set_result(POSTPONED)
        else:
            self._waiting.put_nowait((job_id, future))
        return future

    async def _sender(self) -> None:
        while True:
            job_id, future = await self._waiting.get()
            if future.done():  # its delivery task gave up waiting
                continue
            try:
                _settle(future, await self._deliver(job_id))
            except Exception as error:  # the delivery task decides what an error means
                if not future.done():
                    future.set_exception(error)

    async def _deliver(self, job_id: str) -> str:
        """Deliver one job if it is this worker's to send; returns what became of it."""
        if self._stopping.is_set():
            return POSTPONED
        claim = await self._claims.submit(job_id)
        if claim.result is ClaimResult.MISSING:
            reason = f"unknown job {job_id}: never enqueued, or its record expired"
            letter = DeadLetter.for_poison(reason, job_id)
            await asyncio.to_thread(self._dead_letters.add, letter)
            return claim.result
        if claim.result is not ClaimResult.CLAIMED:
            return claim.result
        if claim.reclaimed:
            log.warning("job %s: taken over from a worker that stopped mid-send; "
                        "if that send went out, this one is a duplicate", job_id)  # fmt: skip
        if claim.wait:
            await asyncio.sleep(claim.wait)  # the rate-limit slot reserved for this send
        return await self._send(job_id, claim)

    async def _send(self, job_id: str, claim: Claim) -> str:
        try:
            message = parse_message(json.loads(claim.message))
        except (ValueError, ValidationError) as error:
            reason = f"malformed job record: {error}"
            return await self._record(job_id, claim, Outcome(OutcomeKind.PERMANENT, reason), False)
        payload = message.to_wire(media_form=self._settings.media_form)
        outcome = await self._client.send(payload, job_id=job_id)
        return await self._record(job_id, claim, outcome, message.submission_status)

    async def _record(self, job_id: str, claim: Claim, outcome: Outcome, keep_result: bool) -> str:
        decision = decide(outcome, claim.attempt, self._settings, self._rng)
        final = decision.verdict is not Verdict.RETRY
        dead_letter = None
        if decision.verdict is Verdict.FAILED:
            dead_letter = DeadLetter(
                id=job_id,
                job_id=job_id,
                reason=decision.error,
                attempts=claim.attempt,
                status_code=outcome.status_code,
                last_response=outcome.body,
            ).as_dict()
            _log_failure(job_id, outcome, decision.error)
        verdict = Finish(
            job_id,
            claim.attempt,
            decision.verdict,
            outcome=outcome.kind.value,
            error=decision.error,
            result=outcome.body if keep_result and final else None,
            delay=decision.delay,
            dead_letter=dead_letter,
        )
        reply = await _persistently(
            lambda: self._finishes.submit(verdict),
            deadline=time.monotonic() + self._settings.lease_seconds,
        )
        log.debug("job %s: %s (%s)", job_id, decision.verdict, reply)
        return decision.verdict.value


def _settle(future: asyncio.Future[str], end: str) -> None:
    if not future.done():
        future.set_result(end)


def _log_failure(job_id: str, outcome: Outcome, error: str) -> None:
    level = logging.ERROR if outcome.kind is OutcomeKind.CREDENTIALS else logging.WARNING
    log.log(level, "job %s failed: %s", job_id, error)


async def _persistently(write: Callable[[], Awaitable[T]], *, deadline: float) -> T:
    """Run a Redis write, retrying through a Redis restart until the claim would run out.

    Losing the write after a send went out would have the job sent again once its claim ran
    out, so it is worth waiting for Redis to come back.
    """
    pause = 0.1
    while True:
        try:
            return await write()
        except (redis.ConnectionError, redis.TimeoutError) as error:
            if time.monotonic() + pause > deadline:
                raise
            log.warning("could not record a send (%s); retrying in %.1fs", error, pause)
            await asyncio.sleep(pause)
            pause = min(pause * 2, 5.0)
