"""The producer for asyncio code (the HTTP service, an async web app): the same jobs and records."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import redis.asyncio

from producer.durable import Durability
from producer.enqueue import Calls, EnqueuePlan, statuses, wakeup_not_published
from producer.errors import StorageError
from producer.jobs import Job
from producer.record import is_job_id
from producer.settings import ProducerSettings
from producer.status import JobStatus
from producer.store import (
    DEFAULT_POOL_SIZE,
    async_client,
    async_pinned,
    close_async_client,
    script_source,
    storage_boundary,
)
from producer.tracing import enqueue_span


@dataclass(frozen=True)
class AsyncStore:
    """asyncio clients for the job records and for the broker queue (often the same Redis)."""

    records: redis.asyncio.Redis
    broker: redis.asyncio.Redis
    shared: bool

    @classmethod
    def connect(
        cls, settings: ProducerSettings, *, pool_size: int = DEFAULT_POOL_SIZE
    ) -> AsyncStore:
        """Clients for the Redis servers named by the settings (lazily: no I/O yet)."""
        records = async_client(settings, settings.redis_url, pool_size)
        if settings.effective_broker_url == settings.redis_url:
            return cls(records, records, shared=True)
        broker = async_client(settings, settings.effective_broker_url, pool_size)
        return cls(records, broker, shared=False)

    async def close(self) -> None:
        """Close the connections."""
        await close_async_client(self.records)
        if not self.shared:
            await close_async_client(self.broker)


class AsyncProducer:
    """`producer.Producer` for asyncio: validates jobs and stores them on the ready list."""

    def __init__(self, settings: ProducerSettings, store: AsyncStore) -> None:
        self.settings = settings
        self.store = store
        self.keys = settings.keys
        self._calls = Calls(settings, queue_here=store.shared)
        self._durability = Durability.of(settings)
        self._enqueue = store.records.register_script(script_source("producer.scripts", "enqueue"))
        self._cancel = store.records.register_script(script_source("producer.scripts", "cancel"))

    async def enqueue_jobs(
        self, jobs: Sequence[Job], *, idempotency_key: str | None = None
    ) -> list[str]:
        """Validate all jobs, then store them; returns their ids (see `Producer.enqueue_jobs`)."""
        with enqueue_span(len(jobs)):
            plan = self._calls.prepare(jobs, idempotency_key)
            for calls in plan.round_trips():
                with storage_boundary("enqueue the jobs", enqueued=plan.stored):
                    replies = await self._run(plan, calls)
                if plan.stored_by(calls, replies) and not self._calls.queue_here:
                    await self._publish_wakeup()
            return plan.job_ids

    async def cancel(self, job_id: str) -> bool:
        """Cancel a job that has not started sending; False if it is sending or finished."""
        if not is_job_id(job_id):
            return False
        keys, args = self._calls.cancel_call(job_id)
        with storage_boundary("cancel the job"):
            return bool(await self._cancel(keys=keys, args=args) == 1)

    async def get_statuses(self, job_ids: Sequence[str]) -> list[JobStatus | None]:
        """The statuses of many jobs, read in one round trip."""
        with storage_boundary("read the job statuses", writes=False):
            async with self.store.records.pipeline(transaction=False) as pipe:
                for job_id in job_ids:
                    pipe.hgetall(self._calls.record_key(job_id))
                records = await pipe.execute()
        return statuses(job_ids, records)

    async def get_status(self, job_id: str) -> JobStatus | None:
        """The job's current status, or None for an id never seen (or long expired)."""
        if not is_job_id(job_id):
            return None
        with storage_boundary("read the job status", writes=False):
            record: dict[str, str] = await self.store.records.hgetall(self.keys.job(job_id))  # type: ignore[assignment]
        return JobStatus.from_record(job_id, record) if record else None

    async def _run(self, plan: EnqueuePlan, calls: range) -> list[Any]:
        if self._durability is not None:
            async with async_pinned(self.store.records) as client:
                replies = [await self._enqueue(keys=plan.keys, args=plan.calls[index],
                                               client=client) for index in calls]  # fmt: skip
                await self._durability.wait_async(client, plan.replay_mark(replies))
            return replies
        if len(calls) == 1:
            return [await self._enqueue(keys=plan.keys, args=plan.calls[calls[0]])]
        async with self.store.records.pipeline(transaction=False) as pipe:
            for index in calls:
                await self._enqueue(keys=plan.keys, args=plan.calls[index], client=pipe)
            return await pipe.execute()

    async def _publish_wakeup(self) -> None:
        try:
            with storage_boundary("publish a wake-up"):
                await self.store.broker.lpush(self.settings.queue, self._calls.envelopes.build())
        except StorageError as error:
            wakeup_not_published(error)
