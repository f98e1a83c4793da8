"""The dashboard's search: a job by its id, a recipient's recent jobs, an idempotency key's jobs."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from producer.aio import AsyncProducer
from producer.enqueue import CHUNK
from producer.jobs import IDEMPOTENCY_KEY_MAX, job_id_for
from producer.record import is_job_id
from producer.status import JobStatus
from producer.store import storage_boundary
from producer.validation import normalised_phone

RECENT = 50
"""A recipient's jobs shown, newest first."""
STEP = 50
"""Job ids derived from an idempotency key, looked up per round trip."""


@dataclass(frozen=True)
class JobDetail:
    """One job: its status, its record as stored, and its history, oldest first."""

    status: JobStatus
    record: dict[str, str]
    history: list[dict[str, Any]]


@dataclass(frozen=True)
class Found:
    """What a search found for its query."""

    query: str
    job: JobDetail | None = None
    recipient: str | None = None
    """The query as a phone number (digits), when it is one."""
    recipient_jobs: list[JobStatus] = field(default_factory=list)
    keyed_jobs: list[JobStatus] = field(default_factory=list)
    """The jobs stored under the query as an idempotency key, in the order they were given."""

    @property
    def nothing(self) -> bool:
        """Whether the search found no job at all."""
        return self.job is None and not self.recipient_jobs and not self.keyed_jobs


async def search(producer: AsyncProducer, query: str) -> Found:
    """Look the query up as a job id, then as a recipient and as an idempotency key."""
    query = query.strip()
    if not query:
        return Found(query)
    job = await job_detail(producer, query) if is_job_id(query) else None
    if job is not None:
        return Found(query, job=job)
    recipient = normalised_phone(query)
    return Found(
        query,
        recipient=recipient,
        recipient_jobs=await _recipient_jobs(producer, recipient) if recipient else [],
        keyed_jobs=await _keyed_jobs(producer, query),
    )


async def job_detail(producer: AsyncProducer, job_id: str) -> JobDetail | None:
    """The job's status, record and history, read in one round trip; None if unknown."""
    keys = producer.keys
    with storage_boundary("read the job", writes=False):
        async with producer.store.records.pipeline(transaction=False) as pipe:
            pipe.hgetall(keys.job(job_id))
            pipe.lrange(keys.history(job_id), 0, -1)
            record, history = await pipe.execute()
    if not record:
        return None
    return JobDetail(
        JobStatus.from_record(job_id, record), record, [_entry(raw) for raw in history]
    )


async def _recipient_jobs(producer: AsyncProducer, recipient: str) -> list[JobStatus]:
    with storage_boundary("list the recipient's jobs", writes=False):
        key = producer.keys.recipient_jobs(recipient)
        job_ids: list[str] = await producer.store.records.zrevrange(key, 0, RECENT - 1)  # type: ignore[assignment]
    return [status for status in await producer.get_statuses(job_ids) if status is not None]


async def _keyed_jobs(producer: AsyncProducer, key: str) -> list[JobStatus]:
    """The jobs of the call made with this key: its derived ids, up to the first not stored."""
    if len(key) > IDEMPOTENCY_KEY_MAX:
        return []
    found: list[JobStatus] = []
    for start in range(0, CHUNK, STEP):  # one call stores at most CHUNK jobs
        ids = [job_id_for(key, index) for index in range(start, start + STEP)]
        for status in await producer.get_statuses(ids):
            if status is None:
                return found
            found.append(status)
    return found


def _entry(raw: str) -> dict[str, Any]:
    """A history entry: the JSON object a script wrote, or its text as the event."""
    try:
        entry = json.loads(raw)
    except ValueError:
        entry = None
    return entry if isinstance(entry, dict) else {"event": raw}
