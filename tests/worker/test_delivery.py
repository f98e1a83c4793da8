"""The courier in-process: real Redis, the sandbox over HTTP, and the event loop of the test."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Awaitable, Callable
from typing import TypeVar

import pytest

from producer import JobState, Producer, keys
from producer.deadletters import DeadLetters
from producer.store import Store
from tests.support import SANDBOX_KEY, wait_until, wire_messages
from worker.delivery import Courier
from worker.jobs import JobRecords
from worker.runtime import async_redis
from worker.settings import WorkerSettings
from worker.zixflow import ZixflowClient, open_session
from zixflow_queue.sandbox import FaultPlan, Sandbox

T = TypeVar("T")


@pytest.fixture
def worker_settings(redis_url: str, sandbox: Sandbox) -> WorkerSettings:
    return WorkerSettings(
        redis_url=redis_url,
        queue="zq-delivery",
        api_key=SANDBOX_KEY,
        base_url=sandbox.url,
        send_concurrency=4,
        recipient_interval=0,
        phone_rate=100_000,
    )


@pytest.fixture
def producer(worker_settings: WorkerSettings) -> Producer:
    return Producer(worker_settings, Store.connect(worker_settings))


@pytest.fixture
def stopping() -> threading.Event:
    return threading.Event()


@pytest.fixture
def with_courier(
    worker_settings: WorkerSettings, producer: Producer, stopping: threading.Event
) -> Callable[[Callable[[Courier], Awaitable[T]]], T]:
    """Run `scenario(courier)` on a fresh event loop, with the courier closed afterwards."""

    def run(scenario: Callable[[Courier], Awaitable[T]]) -> T:
        async def main() -> T:
            courier = Courier(
                JobRecords(async_redis(worker_settings), worker_settings, "test:1"),
                ZixflowClient(open_session(4), base_url=worker_settings.base_url,
                              api_key=SANDBOX_KEY, connect_timeout=2, read_timeout=10),
                DeadLetters(producer.store, worker_settings.queue),
                worker_settings,
                stopping,
            )  # fmt: skip
            try:
                return await scenario(courier)
            finally:
                await courier.close()

        return asyncio.run(main())

    return run


def test_a_batch_ends_each_way(
    producer: Producer, with_courier: Callable[..., dict[str, int]], sandbox: Sandbox
) -> None:
    sandbox.configure(FaultPlan(script={"919800000002": ["window"]}))
    job_ids = producer.enqueue_many(wire_messages(6))

    counts = with_courier(lambda courier: courier.deliver_all([*job_ids, "ghost"]))

    assert counts == {"sent": 5, "failed": 1, "missing": 1}
    statuses = producer.get_statuses(job_ids)
    assert [s.state if s else None for s in statuses].count(JobState.SENT) == 5
    letters = DeadLetters(producer.store, "zq-delivery").entries()
    assert {letter.reason.split(":")[0] for letter in letters} == {
        "HTTP 400",
        "unknown job ghost",
    }


def test_once_stopping_waiting_jobs_go_back_to_the_schedule(
    producer: Producer,
    with_courier: Callable[..., dict[str, int]],
    sandbox: Sandbox,
    stopping: threading.Event,
) -> None:
    sandbox.configure(FaultPlan(latency_ms=300))
    job_ids = producer.enqueue_many(wire_messages(20))
    records = producer.store.records

    async def stop_midway(courier: Courier) -> dict[str, int]:
        delivery = asyncio.create_task(courier.deliver_all(job_ids))
        await asyncio.to_thread(  # stop while the first four sends are in flight
            wait_until, lambda: records.zcard(keys.LEASES) == 4, timeout=10, what="4 claims"
        )
        stopping.set()
        courier.stop()
        return await delivery

    counts = with_courier(stop_midway)

    assert counts == {"sent": 4, "postponed": 16}
    scheduled = producer.store.records.zrange(keys.SCHEDULE, 0, -1)
    assert len(scheduled) == 16 and set(scheduled) <= set(job_ids)
