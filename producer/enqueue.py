"""Enqueueing jobs, reading their status and canceling them: the producer's whole job."""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable, Sequence
from functools import cache
from typing import Any

from producer.envelope import WAKEUP_TTL_MS, EnvelopeBuilder
from producer.errors import IdempotencyConflict, StorageError
from producer.jobs import Job, MessageInput, NewJob, SendAt, as_jobs, prepare
from producer.record import is_job_id
from producer.settings import ProducerSettings, producer_settings
from producer.status import JobStatus
from producer.store import Store, default_store, storage_boundary

log = logging.getLogger(__name__)

CHUNK = 1000
"""Jobs stored per atomic script call: a huge batch never blocks Redis for long."""
CHUNKS_PER_ROUND_TRIP = 10
MAX_BATCH = 100_000
"""The most jobs one `enqueue_many` call takes."""


class Producer:
    """Validates messages and stores each as a job record on the deployment's ready list."""

    def __init__(self, settings: ProducerSettings, store: Store) -> None:
        self.settings = settings
        self.store = store
        self.keys = settings.keys
        self._envelopes = EnvelopeBuilder(settings.queue)
        self._enqueue = store.script("enqueue")
        self._cancel = store.script("cancel")
        self._queue_here = settings.queue if store.shared else ""

    def enqueue(
        self,
        message: MessageInput,
        *,
        idempotency_key: str | None = None,
        send_at: SendAt | None = None,
        callback_url: str | None = None,
    ) -> str:
        """Validate one message and queue it (or schedule it for `send_at`); returns its job id."""
        job = Job(message, send_at=send_at, callback_url=callback_url)
        return self.enqueue_jobs([job], idempotency_key=idempotency_key)[0]

    def enqueue_many(
        self, messages: Iterable[MessageInput | Job], *, idempotency_key: str | None = None
    ) -> list[str]:
        """Validate every message first, then queue them all; returns their job ids in order."""
        return self.enqueue_jobs(as_jobs(messages), idempotency_key=idempotency_key)

    def enqueue_jobs(self, jobs: Sequence[Job], *, idempotency_key: str | None = None) -> list[str]:
        """Validate all jobs, then store them in chunks of 1,000 (each one atomic).

        A StorageError raised part way names the jobs stored before it in `enqueued`.
        """
        if len(jobs) > MAX_BATCH:
            raise ValueError(f"at most {MAX_BATCH:,} jobs per call, got {len(jobs):,}: split them")
        new, fingerprint = prepare(
            jobs, idempotency_key=idempotency_key, record_ttl=self.settings.record_ttl
        )
        stored: list[str] = []
        chunks = [new[start : start + CHUNK] for start in range(0, len(new), CHUNK)]
        for first in range(0, len(chunks), CHUNKS_PER_ROUND_TRIP):
            round_trip = chunks[first : first + CHUNKS_PER_ROUND_TRIP]
            replies = self._store(round_trip, idempotency_key, fingerprint, stored)
            for chunk, reply in zip(round_trip, replies, strict=True):
                if reply[0] == "conflict":
                    raise IdempotencyConflict(_conflict(idempotency_key))
                stored += (job.job_id for job in chunk)
                if reply[1] and not self._queue_here:
                    self._publish_wakeup()
        return [job.job_id for job in new]

    def cancel(self, job_id: str) -> bool:
        """Cancel a job that has not started sending; False if it is sending or finished."""
        if not is_job_id(job_id):
            return False
        keys = self.keys
        with storage_boundary("cancel the job"):
            canceled = self._cancel(
                keys=[keys.job(job_id), keys.history(job_id), keys.schedule, keys.unfinished],
                args=[job_id, repr(time.time()), self.settings.record_ttl],
            )
        return bool(canceled == 1)

    def get_statuses(self, job_ids: Sequence[str]) -> list[JobStatus | None]:
        """The statuses of many jobs, read in one round trip."""
        with storage_boundary("read the job statuses", writes=False):
            pipe = self.store.records.pipeline(transaction=False)
            for job_id in job_ids:
                pipe.hgetall(self.keys.job(job_id) if is_job_id(job_id) else "")
            records = pipe.execute()
        return [
            JobStatus.from_record(job_id, record) if record else None
            for job_id, record in zip(job_ids, records, strict=True)
        ]

    def get_status(self, job_id: str) -> JobStatus | None:
        """The job's current status, or None for an id never seen (or long expired)."""
        if not is_job_id(job_id):
            return None
        with storage_boundary("read the job status", writes=False):
            record: dict[str, str] = self.store.records.hgetall(self.keys.job(job_id))  # type: ignore[assignment]
        return JobStatus.from_record(job_id, record) if record else None

    def _store(
        self,
        chunks: list[list[NewJob]],
        idempotency_key: str | None,
        fingerprint: str,
        stored: list[str],
    ) -> list[Any]:
        """Run enqueue.lua once per chunk, in one round trip."""
        keys = self.keys
        script_keys = [
            keys.ready, keys.schedule, keys.unfinished, keys.wakeup, self._queue_here,
            keys.idempotency(idempotency_key) if idempotency_key else "",
        ]  # fmt: skip
        head = [self.settings.record_ttl, repr(time.time()), WAKEUP_TTL_MS,
                self._envelopes.build(), keys.job.prefix, fingerprint]  # fmt: skip
        calls = [[*head, *(arg for job in chunk for arg in job.arguments())] for chunk in chunks]
        with storage_boundary("enqueue the jobs", enqueued=stored):
            if len(calls) == 1:
                return [self._enqueue(keys=script_keys, args=calls[0])]
            pipe = self.store.records.pipeline(transaction=False)
            for args in calls:
                self._enqueue(keys=script_keys, args=args, client=pipe)
            return pipe.execute()

    def _publish_wakeup(self) -> None:
        """Wake the workers through the broker's own Redis; if it fails, workers wake anyway."""
        try:
            with storage_boundary("publish a wake-up"):
                self.store.broker.lpush(self.settings.queue, self._envelopes.build())
        except StorageError as error:
            log.warning("jobs stored, but their wake-up was not published (%s); a worker "
                        "finds them within seconds", error.__cause__)  # fmt: skip


def _conflict(idempotency_key: str | None) -> str:
    shown = idempotency_key if len(idempotency_key or "") <= 64 else f"{idempotency_key[:61]}..."  # type: ignore[index]
    return (
        f"idempotency key {shown!r} was already used with a different message; "
        "use a new key for a new message"
    )


@cache
def default_producer() -> Producer:
    """The producer for this process, configured from the environment."""
    return Producer(producer_settings(), default_store())


def enqueue(
    message: MessageInput,
    *,
    idempotency_key: str | None = None,
    send_at: SendAt | None = None,
    callback_url: str | None = None,
) -> str:
    """Validate a reply-button message and queue it for sending; returns the job id."""
    return default_producer().enqueue(
        message, idempotency_key=idempotency_key, send_at=send_at, callback_url=callback_url
    )


def enqueue_many(
    messages: Iterable[MessageInput | Job], *, idempotency_key: str | None = None
) -> list[str]:
    """Validate all messages first, then queue them together; returns their job ids in order."""
    return default_producer().enqueue_many(messages, idempotency_key=idempotency_key)


def get_status(job_id: str) -> JobStatus | None:
    """The status of a job, or None for an id never seen."""
    return default_producer().get_status(job_id)


def cancel(job_id: str) -> bool:
    """Cancel a job that has not started sending; False when it is sending or finished."""
    return default_producer().cancel(job_id)
