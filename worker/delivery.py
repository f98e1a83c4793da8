"""Delivering jobs: take → wait for a place in flight → claim → send → decide → record.

Many jobs at once on one event loop: a delivery task takes a batch of ready jobs, and each
job waits for a place under the adaptive limit of sends in flight. Claims, verdicts and jobs
given back that reach Redis together share one Lua call (`Batcher`), so a busy worker makes
a few round trips per batch of sends instead of several per send.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, TypeVar

import redis

from producer.deadletters import DeadLetter
from producer.message import ReplyButtonMessage
from producer.record import is_job_id
from worker.batching import Batcher
from worker.jobs import Claim, Ending, Finish, JobRecords
from worker.limiter import AdaptiveLimit, Stopped
from worker.outcomes import Outcome, OutcomeKind
from worker.policy import decide
from worker.settings import WorkerSettings
from worker.tracing import traced_send
from worker.zixflow import ZixflowClient

log = logging.getLogger(__name__)
T = TypeVar("T")

KEEP_ANSWER = '"submissionStatus":true'
"""How a stored message asks for Zixflow's answer to be kept: the producer validated it and
wrote it as compact wire JSON, which the worker sends as it is (validating it again cost a
tenth of a worker's CPU per message)."""

REDIS_TROUBLE = (redis.ConnectionError, redis.TimeoutError, redis.OutOfMemoryError,
                 redis.ReadOnlyError)  # fmt: skip
"""Errors Redis recovers from: a write is worth trying again until the claim would lapse."""


class Courier:
    """Sends jobs through Zixflow and records each one's fate in its job record.

    Once the worker stops, jobs still waiting for a place in flight go back to the ready list;
    `close` abandons sends in flight (their jobs are given back when the heartbeat lapses).
    """

    def __init__(
        self,
        jobs: JobRecords,
        client: ZixflowClient,
        limit: AdaptiveLimit,
        settings: WorkerSettings,
    ) -> None:
        self._jobs = jobs
        self._client = client
        self._limit = limit
        self._settings = settings
        self._claims = Batcher(jobs.claim)
        self._finishes = Batcher(jobs.finish)
        self._releases = Batcher(jobs.release)
        self._rng = random.Random()
        self.known: set[str] = set()
        """Jobs this worker has taken and not yet finished."""
        self._sends: set[asyncio.Task[Ending]] = set()

    async def deliver(self) -> Counter[Ending]:
        """Take a batch of ready jobs and deliver each; returns how many ended each way."""
        taken = await self._jobs.take(self._settings.batch_size)
        job_ids = [item for item in taken if is_job_id(item)]
        if len(job_ids) < len(taken):
            await self._jobs.reject([item for item in taken if not is_job_id(item)])
        self.known.update(job_ids)
        sends = [asyncio.ensure_future(self._deliver(job_id)) for job_id in job_ids]
        self._sends.update(sends)
        try:
            ends = await asyncio.gather(*sends, return_exceptions=True)
        finally:
            self._sends.difference_update(sends)
        for end in ends:
            if isinstance(end, BaseException):
                raise end  # a bug: the task fails where Flower and the log show it
        return Counter(end for end in ends if isinstance(end, Ending))

    def stop(self) -> None:
        """Start no new send: jobs waiting for a place in flight go back (call on the loop)."""
        self._limit.stop()

    async def close(self) -> None:
        """Abandon sends in flight; close the HTTP connections."""
        for send in self._sends:
            send.cancel()
        await asyncio.gather(*self._sends, return_exceptions=True)
        await self._client.close()

    async def _deliver(self, job_id: str) -> Ending:
        try:
            sent = await self._claim_and_send(job_id)
            if isinstance(sent, Ending):
                return sent
            return await self._record(job_id, *sent)
        finally:
            self.known.discard(job_id)

    async def _claim_and_send(self, job_id: str) -> Ending | tuple[Claim, Attempt]:
        """Claim the job and send it, holding a place in flight; or say why it was not sent.

        The place is held for the claim and the HTTP send only: recording the verdict waits
        on Redis, not on Zixflow, so it does not count against the sends in flight.
        """
        try:
            async with self._limit.slot() as slot:
                try:
                    claim = await self._claims.submit(job_id)
                except REDIS_TROUBLE as error:
                    log.warning("job %s: no claim, Redis trouble (%s)", job_id, error,
                                extra=_fields(job_id))  # fmt: skip
                    return await self._give_back(job_id)
                if claim.ending is not None:
                    return claim.ending
                if claim.reclaimed:
                    log.warning("job %s: taken over from a worker that stopped mid-send; if "
                                "that send went out, this one is a duplicate", job_id,
                                extra=_fields(job_id, claim.attempt))  # fmt: skip
                if claim.wait:
                    await asyncio.sleep(claim.wait)  # the rate-limit slot reserved for this send
                attempt = await self._send(job_id, claim)
                slot.latency = attempt.seconds
                slot.throttled = attempt.outcome.kind is OutcomeKind.THROTTLED
                return claim, attempt
        except Stopped:
            return await self._give_back(job_id)

    async def _send(self, job_id: str, claim: Claim) -> Attempt:
        """Send a claimed job (unless it cannot be sent) and say how it went."""
        if claim.exhausted:
            reason = (f"gave up after {claim.attempt} attempts; the last sends' outcome is "
                      "unknown (their workers stopped mid-send)")  # fmt: skip
            return Attempt(Outcome(OutcomeKind.PERMANENT, reason))
        body = claim.message
        if self._settings.media_form != "string":
            try:
                message = ReplyButtonMessage.model_validate_json(body)
            except ValueError as error:
                return Attempt(Outcome(OutcomeKind.PERMANENT, f"malformed job record: {error}"))
            body = message.to_wire_json(media_form=self._settings.media_form)
        started = time.monotonic()
        sending = self._client.send(body.encode(), job_id=job_id)
        if claim.trace:  # enqueued within a traced request: the send joins its trace
            sending = traced_send(sending, job_id, claim.attempt, claim.trace)
        outcome = await sending
        return Attempt(outcome, KEEP_ANSWER in body, time.monotonic() - started)

    async def _record(self, job_id: str, claim: Claim, attempt: Attempt) -> Ending:
        outcome = attempt.outcome
        decision = decide(outcome, claim.attempt, self._settings, self._rng)
        final = decision.verdict is not Ending.RETRY
        dead_letter = None
        if decision.verdict is Ending.FAILED:
            dead_letter = DeadLetter(
                id=job_id,
                job_id=job_id,
                reason=decision.error,
                attempts=claim.attempt,
                status_code=outcome.status_code,
                last_response=outcome.body,
            ).as_dict()
            _log_failure(job_id, claim.attempt, attempt, decision.error)
        verdict = Finish(
            job_id,
            claim.attempt,
            decision.verdict,
            outcome=outcome.kind.value,
            error=decision.error,
            result=outcome.body if attempt.keep_result and final else None,
            delay=decision.delay,
            dead_letter=dead_letter,
            seconds=attempt.seconds,
        )
        try:
            reply = await _persistently(
                lambda: self._finishes.submit(verdict),
                deadline=time.monotonic() + self._settings.heartbeat_timeout,
            )
        except REDIS_TROUBLE as error:
            log.error("job %s: its send ended %s, but Redis could not record it (%s); another "
                      "worker takes it over, and may send it again", job_id, decision.verdict,
                      error, extra=_fields(job_id, claim.attempt, attempt))  # fmt: skip
            return Ending.UNRECORDED
        if log.isEnabledFor(logging.DEBUG):  # the path of every send: no fields unless shown
            log.debug("job %s: %s (%s)", job_id, decision.verdict, reply,
                      extra=_fields(job_id, claim.attempt, attempt))  # fmt: skip
        return decision.verdict

    async def _give_back(self, job_id: str) -> Ending:
        """Return a job not sent to the ready list; if Redis is away, the upkeep does it later."""
        try:
            await self._releases.submit(job_id)
        except REDIS_TROUBLE as error:
            log.warning("job %s: could not give it back (%s); it returns once this worker's "
                        "held jobs are reconciled", job_id, error,
                        extra=_fields(job_id))  # fmt: skip
        return Ending.POSTPONED


@dataclass(frozen=True, slots=True)
class Attempt:
    """One attempt at a job: its outcome, whether Zixflow's answer is kept, and how long the
    HTTP send took (None when nothing was sent)."""

    outcome: Outcome
    keep_result: bool = False
    seconds: float | None = None


def _log_failure(job_id: str, number: int, attempt: Attempt, error: str) -> None:
    level = logging.ERROR if attempt.outcome.kind is OutcomeKind.CREDENTIALS else logging.WARNING
    log.log(level, "job %s failed: %s", job_id, error, extra=_fields(job_id, number, attempt))


def _fields(
    job_id: str, number: int | None = None, attempt: Attempt | None = None
) -> dict[str, Any]:
    """The fields a log line about a job carries (for ZQ_LOG_FORMAT=json), where they apply."""
    fields: dict[str, Any] = {"job_id": job_id}
    if number is not None:
        fields["attempt"] = number
    if attempt is not None:
        fields["outcome"] = attempt.outcome.kind.value
        if attempt.seconds is not None:
            fields["duration_ms"] = round(attempt.seconds * 1000, 1)
    return fields


async def _persistently(write: Callable[[], Awaitable[T]], *, deadline: float) -> T:
    """Run a Redis write, retrying through a Redis restart until the heartbeat would lapse.

    Losing the write after a send went out would have the job sent again once another worker
    took it over, so it is worth waiting for Redis to come back.
    """
    pause = 0.1
    while True:
        try:
            return await write()
        except REDIS_TROUBLE as error:
            if time.monotonic() + pause > deadline:
                raise
            log.warning("could not record a send (%s); retrying in %.1fs", error, pause)
            await asyncio.sleep(pause)
            pause = min(pause * 2, 5.0)
