"""Enqueueing jobs and reading their status: the producer's whole job."""

from __future__ import annotations

import hashlib
import time
import uuid
from collections.abc import Iterable, Mapping, Sequence
from functools import cache
from typing import Any

from producer import keys
from producer.envelope import EnvelopeBuilder
from producer.errors import IdempotencyConflict
from producer.message import ReplyButtonMessage, parse_message, parse_messages
from producer.settings import ProducerSettings, producer_settings
from producer.status import JobStatus
from producer.store import Store, default_store, redis_errors

MessageInput = Mapping[str, Any] | ReplyButtonMessage


class Producer:
    """Validates messages and stores each as a job record plus a delivery-task message."""

    def __init__(self, settings: ProducerSettings, store: Store) -> None:
        self.settings = settings
        self.store = store
        self._envelopes = EnvelopeBuilder(settings.queue)
        self._enqueue_script = store.script("enqueue")
        self._enqueue_many_script = store.script("enqueue_many")
        self._shared_queue = settings.queue if store.shared else ""

    def enqueue(self, message: MessageInput, *, idempotency_key: str | None = None) -> str:
        """Validate one message and queue it; returns its job id."""
        valid = parse_message(message)
        wire = valid.to_wire_json()
        job_id = _new_job_id()
        envelope = self._envelopes.build([job_id])
        fingerprint = hashlib.sha256(wire.encode()).hexdigest() if idempotency_key else ""
        keys_ = [
            keys.job(job_id),
            keys.idempotency(idempotency_key) if idempotency_key else "",
            self._shared_queue,
            keys.UNFINISHED,
        ]
        args = [job_id, fingerprint, self.settings.record_ttl, envelope, repr(time.time()),
                wire, valid.phone_id, valid.to, idempotency_key or ""]  # fmt: skip
        with redis_errors("enqueue the job"):
            existing = self._enqueue_script(keys=keys_, args=args)
            if existing:
                return _existing_job(existing, fingerprint, idempotency_key)
            if not self.store.shared:
                self.store.broker.lpush(self.settings.queue, envelope)
        return job_id

    def enqueue_many(self, messages: Iterable[MessageInput]) -> list[str]:
        """Validate every message, then queue them all in one round trip; returns job ids."""
        valid = parse_messages(list(messages))
        job_ids = [_new_job_id() for _ in valid]
        size, created_at = self.settings.batch_size, repr(time.time())
        envelopes = self._envelopes.build_chunks(job_ids, size)
        with redis_errors("enqueue the jobs"):
            pipe = self.store.records.pipeline(transaction=True)
            for start, envelope in zip(range(0, len(job_ids), size), envelopes, strict=True):
                chunk = job_ids[start : start + size]
                args: list[str | int] = [
                    self.settings.record_ttl,
                    created_at,
                    _JOB_PREFIX,
                    len(chunk),
                ]
                for job_id, message in zip(chunk, valid[start : start + size], strict=True):
                    args += (job_id, message.to_wire_json(), message.phone_id, message.to)
                if self.store.shared:
                    args.append(envelope)
                self._enqueue_many_script(
                    keys=[self._shared_queue, keys.UNFINISHED], args=args, client=pipe
                )
            pipe.execute()
            if envelopes and not self.store.shared:
                self.store.broker.lpush(self.settings.queue, *envelopes)  # after the records
        return job_ids

    def get_statuses(self, job_ids: Sequence[str]) -> list[JobStatus | None]:
        """The statuses of many jobs, read in one round trip."""
        with redis_errors("read the job statuses"):
            pipe = self.store.records.pipeline(transaction=False)
            for job_id in job_ids:
                pipe.hgetall(keys.job(job_id))
            records = pipe.execute()
        return [
            JobStatus.from_record(job_id, record) if record else None
            for job_id, record in zip(job_ids, records, strict=True)
        ]

    def get_status(self, job_id: str) -> JobStatus | None:
        """The job's current status, or None for an id never seen (or long expired)."""
        with redis_errors("read the job status"):
            record: dict[str, str] = self.store.records.hgetall(keys.job(job_id))  # type: ignore[assignment]
        return JobStatus.from_record(job_id, record) if record else None


_JOB_PREFIX = keys.job("")


def _new_job_id() -> str:
    return uuid.uuid4().hex


def _existing_job(existing: str, fingerprint: str, idempotency_key: str | None) -> str:
    job_id, _, known_fingerprint = existing.partition(" ")
    if known_fingerprint != fingerprint:
        raise IdempotencyConflict(
            f"idempotency key {idempotency_key!r} was already used for job {job_id} "
            "with a different message; use a new key for a new message"
        )
    return job_id


@cache
def default_producer() -> Producer:
    """The producer for this process, configured from the environment."""
    return Producer(producer_settings(), default_store())


def enqueue(message: MessageInput, *, idempotency_key: str | None = None) -> str:
    """Validate a reply-button message and queue it for sending; returns the job id."""
    return default_producer().enqueue(message, idempotency_key=idempotency_key)


def enqueue_many(messages: Sequence[MessageInput]) -> list[str]:
    """Validate all messages first, then queue them together; returns their job ids in order."""
    return default_producer().enqueue_many(messages)


def get_status(job_id: str) -> JobStatus | None:
    """The status of a job, or None for an id never seen."""
    return default_producer().get_status(job_id)
