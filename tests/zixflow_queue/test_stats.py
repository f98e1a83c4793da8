"""A snapshot of the deployment's numbers, read from what workers record."""

from __future__ import annotations

import asyncio
import math
import time

import redis
import redis.asyncio

from producer import Producer
from producer.settings import ProducerSettings
from producer.store import Store, connection_options
from tests.support import wire_message, wire_messages
from worker.jobs import Ending, Finish, JobRecords, Wakeups
from worker.settings import WorkerSettings
from zixflow_queue.stats import SnapshotReader


def test_a_snapshot_counts_backlogs_work_and_outcomes(redis_url: str) -> None:
    settings = ProducerSettings(redis_url=redis_url, queue="zq-stats", prefix=None)
    producer = Producer(settings, Store.connect(settings))
    reader = SnapshotReader(settings)
    empty = reader.read(producer.store.records, producer.store.broker)
    assert (empty.waiting, empty.in_flight, empty.workers, empty.counters) == (0, 0, 0, {})
    assert empty.oldest_waiting_seconds is None and len(empty.series) == 30

    sent, failed, *_ = producer.enqueue_many(wire_messages(5))
    producer.enqueue(wire_message(), send_at=time.time() + 60)
    worker_settings = WorkerSettings(redis_url=redis_url, queue="zq-stats", prefix=None)

    async def work() -> None:
        client = redis.asyncio.Redis.from_url(redis_url, **connection_options(5))
        jobs = JobRecords(client, worker_settings, "w1", Wakeups(worker_settings, None))
        await jobs.take(3)
        await jobs.claim([sent, failed])
        await jobs.finish([
            Finish(sent, 1, Ending.SENT, "sent", seconds=0.03),
            Finish(failed, 1, Ending.FAILED, "permanent", error="closed", seconds=2.0,
                   dead_letter={"id": failed, "job_id": failed, "reason": "closed"}),
        ])  # fmt: skip
        await client.aclose()

    asyncio.run(work())
    snapshot = reader.read(producer.store.records, producer.store.broker)

    assert (snapshot.waiting, snapshot.scheduled, snapshot.in_flight) == (2, 1, 1)
    # One wake-up from the enqueue, still there (no Celery here), one from the take.
    assert (snapshot.workers, snapshot.dead_letters, snapshot.queue_items) == (1, 1, 2)
    assert snapshot.counters == {"sent": 1, "failed": 1, "attempt:sent": 1,
                                 "attempt:permanent": 1}  # fmt: skip
    assert snapshot.send_seconds.count == 2
    assert snapshot.send_seconds.total == 2.03
    assert snapshot.send_seconds.buckets[0.05] == 1 and snapshot.send_seconds.buckets[2.5] == 1
    assert snapshot.latency_seconds.count == 1
    assert snapshot.oldest_waiting_seconds is not None and snapshot.oldest_waiting_seconds >= 0
    assert sum(sent for _, sent, _ in snapshot.series) == 1
    assert sum(failed for _, _, failed in snapshot.series) == 1
    assert math.isinf(max(snapshot.send_seconds.buckets))


def test_the_asyncio_reading_is_the_same(redis_url: str, real_redis: redis.Redis) -> None:
    settings = ProducerSettings(redis_url=redis_url, queue="zq-stats", prefix=None)
    Producer(settings, Store.connect(settings)).enqueue_many(wire_messages(3))
    reader = SnapshotReader(settings)

    async def read() -> tuple[int, int]:
        client = redis.asyncio.Redis.from_url(redis_url, **connection_options(5))
        snapshot = await reader.read_async(client, client)
        await client.aclose()
        return snapshot.waiting, snapshot.queue_items

    assert asyncio.run(read()) == (3, real_redis.llen("zq-stats"))
