"""Delivering jobs: claim → send → decide → record, one job at a time or a batch in parallel."""

from __future__ import annotations

import json
import logging
import math
import random
import threading
import time
from collections import Counter
from collections.abc import Callable, Sequence
from concurrent.futures import Executor, wait
from typing import TypeVar

import redis

from producer.deadletters import DeadLetter, DeadLetters
from producer.errors import ValidationError
from producer.message import parse_message
from worker.gate import ConcurrencyGate
from worker.jobs import Claim, ClaimResult, JobRecords, Verdict
from worker.outcomes import Outcome, OutcomeKind
from worker.policy import decide
from worker.settings import WorkerSettings
from worker.zixflow import ZixflowClient

log = logging.getLogger(__name__)
T = TypeVar("T")


class Courier:
    """Sends jobs through Zixflow and records each one's fate in its job record."""

    def __init__(
        self,
        records: JobRecords,
        client: ZixflowClient,
        dead_letters: DeadLetters,
        settings: WorkerSettings,
        executor: Executor,
        stopping: threading.Event,
    ) -> None:
        self._records = records
        self._client = client
        self._dead_letters = dead_letters
        self._settings = settings
        self._executor = executor
        self._stopping = stopping
        self._gate = ConcurrencyGate(settings.send_concurrency)
        self._rng = random.Random()

    def deliver_all(self, job_ids: Sequence[str]) -> dict[str, int]:
        """Deliver a batch, in parallel on the send pool; returns how many ended each way.

        Once the worker is stopping, jobs not yet started go back to the schedule and sends in
        flight get ZQ_SHUTDOWN_GRACE seconds; any still unanswered then are left to their
        claims, which another worker takes over when they run out.
        """
        if len(job_ids) == 1:
            return {self.deliver(job_ids[0]): 1}
        pending = {self._executor.submit(self._deliver_gated, job_id) for job_id in job_ids}
        counts: Counter[str] = Counter()
        deadline = math.inf
        while pending and time.monotonic() < deadline:
            done, pending = wait(pending, timeout=0.5)
            counts.update(future.result() for future in done)
            if self._stopping.is_set() and deadline == math.inf:
                deadline = time.monotonic() + self._settings.shutdown_grace
        if pending:
            counts["left in flight at shutdown"] = len(pending)
        return dict(counts)

    def _deliver_gated(self, job_id: str) -> str:
        with self._gate.slot():
            return self.deliver(job_id)

    def deliver(self, job_id: str) -> str:
        """Deliver one job if it is this worker's to send; returns what became of it."""
        if self._stopping.is_set():
            self._records.postpone([job_id])
            return "postponed"
        claim = self._records.claim(job_id)
        if claim.result is ClaimResult.MISSING:
            reason = f"unknown job {job_id}: never enqueued, or its record expired"
            self._dead_letters.add(DeadLetter.for_poison(reason, job_id))
            return claim.result
        if claim.result is not ClaimResult.CLAIMED:
            return claim.result
        if claim.reclaimed:
            log.warning("job %s: taken over from a worker that stopped mid-send; "
                        "if that send went out, this one is a duplicate", job_id)  # fmt: skip
        if claim.wait:
            time.sleep(claim.wait)  # the rate-limit slot reserved for this send
        return self._send(job_id, claim)

    def _send(self, job_id: str, claim: Claim) -> str:
        try:
            message = parse_message(json.loads(claim.message))
        except (ValueError, ValidationError) as error:
            reason = f"malformed job record: {error}"
            return self._record(job_id, claim, Outcome(OutcomeKind.PERMANENT, reason), False)
        payload = message.to_wire(media_form=self._settings.media_form)
        outcome = self._client.send(payload, job_id=job_id)
        return self._record(job_id, claim, outcome, message.submission_status)

    def _record(self, job_id: str, claim: Claim, outcome: Outcome, keep_result: bool) -> str:
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
        reply = _persistently(
            lambda: self._records.finish(
                job_id,
                decision.verdict,
                outcome=outcome.kind.value,
                error=decision.error,
                result=outcome.body if keep_result and final else None,
                delay=decision.delay,
                dead_letter=dead_letter,
            ),
            deadline=time.monotonic() + self._settings.lease_seconds,
        )
        log.debug("job %s: %s (%s)", job_id, decision.verdict, reply)
        return decision.verdict.value


def _log_failure(job_id: str, outcome: Outcome, error: str) -> None:
    level = logging.ERROR if outcome.kind is OutcomeKind.CREDENTIALS else logging.WARNING
    log.log(level, "job %s failed: %s", job_id, error)


def _persistently(write: Callable[[], T], *, deadline: float) -> T:
    """Run a Redis write, retrying through a Redis restart until the claim would run out.

    Losing the write after a send went out would have the job sent again once its claim ran
    out, so it is worth waiting for Redis to come back.
    """
    pause = 0.1
    while True:
        try:
            return write()
        except (redis.ConnectionError, redis.TimeoutError) as error:
            if time.monotonic() + pause > deadline:
                raise
            log.warning("could not record a send (%s); retrying in %.1fs", error, pause)
            time.sleep(pause)
            pause = min(pause * 2, 5.0)
