"""Enqueueing jobs, reading their status and canceling them: the producer's whole job."""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from functools import cache
from itertools import chain
from typing import Any

from producer.durable import Durability
from producer.envelope import WAKEUP_TTL_MS, EnvelopeBuilder
from producer.errors import IdempotencyConflict, StorageError
from producer.group_commit import GroupCommit
from producer.jobs import Job, MessageInput, NewJob, SendAt, as_jobs, prepare
from producer.record import is_job_id
from producer.settings import ProducerSettings, producer_settings
from producer.status import JobStatus
from producer.store import Store, default_store, pinned, storage_boundary
from producer.tracing import enqueue_span

log = logging.getLogger(__name__)

CHUNK = 1000
"""Jobs stored per atomic script call: a huge batch never blocks Redis for long."""
CHUNKS_PER_ROUND_TRIP = 10
MAX_BATCH = 100_000
"""The most jobs one `enqueue_many` call takes."""


class Calls:
    """What the producer's scripts are called with, and what their replies mean: the pure part
    of every producer, synchronous (`Producer`) or asyncio (`producer.aio.AsyncProducer`)."""

    def __init__(self, settings: ProducerSettings, *, queue_here: bool) -> None:
        self.settings = settings
        self.keys = settings.keys
        self.queue_here = settings.queue if queue_here else ""
        self.envelopes = EnvelopeBuilder(settings.queue)

    def prepare(self, jobs: Sequence[Job], idempotency_key: str | None) -> EnqueuePlan:
        """Validate the jobs and split them into the script calls that store them."""
        new, fingerprint = self.check(jobs, idempotency_key)
        return self.plan(new, idempotency_key, fingerprint)

    def check(self, jobs: Sequence[Job], idempotency_key: str | None) -> tuple[list[NewJob], str]:
        """Validate the jobs: the new jobs, and the fingerprint the key is bound to."""
        if len(jobs) > MAX_BATCH:
            raise ValueError(f"at most {MAX_BATCH:,} jobs per call, got {len(jobs):,}: split them")
        return prepare(
            jobs,
            idempotency_key=idempotency_key,
            record_ttl=self.settings.record_ttl,
            public_callbacks=self.settings.callback_hosts == "public",
        )

    def plan(
        self, new: list[NewJob], idempotency_key: str | None = None, fingerprint: str = ""
    ) -> EnqueuePlan:
        """The script calls that store these checked jobs."""
        keys = self.keys
        script_keys = [
            keys.ready, keys.schedule, keys.unfinished, keys.wakeup, self.queue_here,
            keys.idempotency(idempotency_key) if idempotency_key else "",
        ]  # fmt: skip
        head = [self.settings.record_ttl, repr(time.time()), WAKEUP_TTL_MS,
                self.envelopes.template, self.envelopes.ids(), keys.job.prefix,
                keys.recipient_jobs.prefix, fingerprint]  # fmt: skip
        chunks = [new[start : start + CHUNK] for start in range(0, len(new), CHUNK)]
        calls = [
            [*head, *chain.from_iterable(job.arguments() for job in chunk)] for chunk in chunks
        ]
        return EnqueuePlan(new, chunks, script_keys, calls, idempotency_key, fingerprint)

    def cancel_call(self, job_id: str) -> tuple[list[str], list[str | float | int]]:
        """cancel.lua's keys and arguments for one job."""
        keys = self.keys
        return (
            [keys.job(job_id), keys.history(job_id), keys.schedule, keys.unfinished, keys.stats,
             keys.events_ready],
            [job_id, repr(time.time()), self.settings.record_ttl, self.settings.callback_url or "",
             keys.event.prefix],
        )  # fmt: skip

    def record_key(self, job_id: str) -> str:
        """The record key of a job id, or '' (no such key) for what is not a job id."""
        return self.keys.job(job_id) if is_job_id(job_id) else ""


@dataclass
class EnqueuePlan:
    """The script calls storing a batch of new jobs, and what has been stored so far."""

    jobs: list[NewJob]
    chunks: list[list[NewJob]]
    keys: list[str]
    calls: list[list[Any]]
    idempotency_key: str | None
    fingerprint: str
    """What the idempotency key is bound to: the whole request's messages and options."""
    stored: list[str] = field(default_factory=list)

    def round_trips(self) -> list[range]:
        """Which calls go to Redis together."""
        count = len(self.calls)
        return [range(first, min(first + CHUNKS_PER_ROUND_TRIP, count))
                for first in range(0, count, CHUNKS_PER_ROUND_TRIP)]  # fmt: skip

    def stored_by(self, calls: range, replies: Sequence[Any]) -> int:
        """Note what these calls stored; returns how many asked for a wake-up elsewhere."""
        wakeups = 0
        for index, reply in zip(calls, replies, strict=True):
            if reply[0] == "conflict":
                raise IdempotencyConflict(_conflict(self.idempotency_key))
            self.stored += (job.job_id for job in self.chunks[index])
            wakeups += int(reply[1])
        return wakeups

    def replay_mark(self, replies: Sequence[Any]) -> tuple[Any, ...]:
        """A write that lets a durable wait cover jobs an idempotent retry found stored.

        WAITAOF and WAIT confirm the writes of their own connection: calls that stored nothing
        (every job was there already, stored perhaps through another connection whose wait
        timed out) would confirm nothing of these jobs. Rewriting the idempotency key, value
        and TTL unchanged, gives the connection a write later than theirs. Empty when the
        calls wrote.
        """
        if self.idempotency_key is None or any(
            reply[0] != "stored" or int(reply[2]) for reply in replies
        ):
            return ()
        key = self.keys[5]  # enqueue.lua's idempotency key
        return ("SET", key, self.fingerprint, "KEEPTTL", "XX")

    @property
    def job_ids(self) -> list[str]:
        """The ids of all the plan's jobs, in order."""
        return [job.job_id for job in self.jobs]


class Producer:
    """Validates messages and stores each as a job record on the deployment's ready list."""

    def __init__(self, settings: ProducerSettings, store: Store) -> None:
        self.settings = settings
        self.store = store
        self.keys = settings.keys
        self._calls = Calls(settings, queue_here=store.shared)
        self._durability = Durability.of(settings)
        self._enqueue = store.script("enqueue")
        self._cancel = store.script("cancel")
        self._together = GroupCommit(self._store_together, most=CHUNK)

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

        A StorageError raised part way names the jobs stored before it in `enqueued`. One job
        without a key is stored together with those other threads enqueue meanwhile.
        """
        with enqueue_span(len(jobs)):
            new, fingerprint = self._calls.check(jobs, idempotency_key)
            if len(new) == 1 and idempotency_key is None:
                self._together.submit(new[0])
                return [new[0].job_id]
            plan = self._calls.plan(new, idempotency_key, fingerprint)
            self._store(plan)
            return plan.job_ids

    def cancel(self, job_id: str) -> bool:
        """Cancel a job that has not started sending; False if it is sending or finished."""
        if not is_job_id(job_id):
            return False
        keys, args = self._calls.cancel_call(job_id)
        with storage_boundary("cancel the job"):
            return bool(self._cancel(keys=keys, args=args) == 1)

    def get_statuses(self, job_ids: Sequence[str]) -> list[JobStatus | None]:
        """The statuses of many jobs, read in one round trip."""
        with storage_boundary("read the job statuses", writes=False):
            pipe = self.store.records.pipeline(transaction=False)
            for job_id in job_ids:
                pipe.hgetall(self._calls.record_key(job_id))
            records = pipe.execute()
        return statuses(job_ids, records)

    def get_status(self, job_id: str) -> JobStatus | None:
        """The job's current status, or None for an id never seen (or long expired)."""
        if not is_job_id(job_id):
            return None
        with storage_boundary("read the job status", writes=False):
            record: dict[str, str] = self.store.records.hgetall(self.keys.job(job_id))  # type: ignore[assignment]
        return JobStatus.from_record(job_id, record) if record else None

    def _store(self, plan: EnqueuePlan) -> None:
        """Run the plan's calls round trip by round trip; publish the wake-ups they ask for."""
        for calls in plan.round_trips():
            with storage_boundary("enqueue the jobs", enqueued=plan.stored):
                replies = self._run(plan, calls)
            if plan.stored_by(calls, replies) and not self._calls.queue_here:
                self._publish_wakeup()

    def _store_together(self, jobs: list[NewJob]) -> None:
        """Store single jobs of concurrent calls in one script call (GroupCommit's write)."""
        self._store(self._calls.plan(jobs))

    def _run(self, plan: EnqueuePlan, calls: range) -> list[Any]:
        """Run enqueue.lua once per call, pipelined in one round trip.

        With ZQ_DURABLE, the calls go one after another on one connection, and then wait on it
        until Redis has made them durable.
        """
        if self._durability is not None:
            with pinned(self.store.records) as client:
                replies = [self._enqueue(keys=plan.keys, args=plan.calls[index], client=client)
                           for index in calls]  # fmt: skip
                self._durability.wait(client, plan.replay_mark(replies))
            return replies
        if len(calls) == 1:
            return [self._enqueue(keys=plan.keys, args=plan.calls[calls[0]])]
        pipe = self.store.records.pipeline(transaction=False)
        for index in calls:
            self._enqueue(keys=plan.keys, args=plan.calls[index], client=pipe)
        return pipe.execute()

    def _publish_wakeup(self) -> None:
        """Wake the workers through the broker's own Redis; if it fails, workers wake anyway."""
        try:
            with storage_boundary("publish a wake-up"):
                self.store.broker.lpush(self.settings.queue, self._calls.envelopes.build())
        except StorageError as error:
            wakeup_not_published(error)


def wakeup_not_published(error: StorageError) -> None:
    """Say that jobs were stored but their wake-up was not: workers find them anyway."""
    log.warning("jobs stored, but their wake-up was not published (%s); a worker finds them "
                "within seconds", error.__cause__)  # fmt: skip


def statuses(job_ids: Sequence[str], records: Sequence[dict[str, str]]) -> list[JobStatus | None]:
    """Records read for these job ids, as statuses (None where there is no record)."""
    return [
        JobStatus.from_record(job_id, record) if record else None
        for job_id, record in zip(job_ids, records, strict=True)
    ]


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
