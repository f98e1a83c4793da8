"""The courier in-process: real Redis, the sandbox over HTTP, and the event loop of the test."""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Awaitable, Callable
from typing import TypeVar

import pytest
import redis.asyncio

from producer import JobState, Producer
from producer.deadletters import DeadLetters
from producer.store import Store, connection_options
from tests.support import SANDBOX_KEY, wait_until, wire_message, wire_messages
from worker.delivery import Courier
from worker.jobs import Ending, JobRecords, Wakeups
from worker.limiter import AdaptiveLimit
from worker.settings import WorkerSettings
from worker.zixflow import ZixflowClient, open_session
from zixflow_queue.sandbox import FaultPlan, Sandbox

T = TypeVar("T")
Run = Callable[[Callable[[Courier], Awaitable[T]]], T]


@pytest.fixture
def worker_settings(redis_url: str, sandbox: Sandbox) -> WorkerSettings:
    return WorkerSettings(
        redis_url=redis_url,
        queue="zq-delivery",
        prefix=None,
        api_key=SANDBOX_KEY,
        base_url=sandbox.url,
        send_concurrency=4,
        max_in_flight=4,
        recipient_interval=0,
        phone_rate=100_000,
    )


@pytest.fixture
def producer(worker_settings: WorkerSettings) -> Producer:
    return Producer(worker_settings, Store.connect(worker_settings))


@pytest.fixture
def with_courier(worker_settings: WorkerSettings) -> Run[object]:
    """Run `scenario(courier)` on a fresh event loop, with the courier closed afterwards."""

    def run(scenario: Callable[[Courier], Awaitable[T]]) -> T:
        async def main() -> T:
            client = redis.asyncio.Redis.from_url(
                worker_settings.redis_url, **connection_options(5)
            )

            courier = Courier(
                JobRecords(client, worker_settings, "test:1", Wakeups(worker_settings, None)),
                ZixflowClient(open_session(4), base_url=worker_settings.base_url,
                              api_key=SANDBOX_KEY, connect_timeout=2, read_timeout=10),
                AdaptiveLimit(worker_settings.send_concurrency, worker_settings.max_in_flight),
                worker_settings,
            )  # fmt: skip
            try:
                return await scenario(courier)
            finally:
                await courier.close()
                await client.aclose()

        return asyncio.run(main())

    return run


def test_a_batch_ends_each_way(
    producer: Producer, with_courier: Run[Counter[Ending]], sandbox: Sandbox
) -> None:
    sandbox.configure(FaultPlan(script={"919800000002": ["window"], "919800000003": ["error500"]}))
    job_ids = producer.enqueue_many(wire_messages(6))
    producer.cancel(job_ids[5])

    counts = with_courier(lambda courier: courier.deliver())

    assert counts == {Ending.SENT: 3, Ending.FAILED: 1, Ending.RETRY: 1, Ending.FINISHED: 1}
    states = [s.state if s else None for s in producer.get_statuses(job_ids)]
    assert states == ["sent", "sent", "failed", "retrying", "sent", "canceled"]
    letters = DeadLetters(producer.store, producer.settings).entries()
    assert [letter.job_id for letter in letters] == [job_ids[2]]
    assert [r["job_id"] for r in sandbox.requests()].count(job_ids[5]) == 0  # never sent


def test_answers_are_kept_only_when_the_message_asks(
    producer: Producer, with_courier: Run[Counter[Ending]]
) -> None:
    kept, plain = producer.enqueue_many([wire_message(submissionStatus=True), wire_message()])
    with_courier(lambda courier: courier.deliver())
    statuses = producer.get_statuses([kept, plain])
    assert statuses[0] is not None and statuses[0].result is not None
    assert set(statuses[0].result) >= {"status", "campaignId", "messageId"}
    assert statuses[1] is not None and statuses[1].result is None


def test_once_stopped_waiting_jobs_go_back_to_the_ready_list(
    producer: Producer, with_courier: Run[Counter[Ending]], sandbox: Sandbox
) -> None:
    sandbox.configure(FaultPlan(latency_ms=300))
    job_ids = producer.enqueue_many(wire_messages(20))
    records = producer.store.records

    def sending() -> int:
        return sum(s is not None and s.state == "sending" for s in producer.get_statuses(job_ids))

    async def stop_midway(courier: Courier) -> Counter[Ending]:
        delivery = asyncio.create_task(courier.deliver())
        await asyncio.to_thread(  # stop while the first four sends are in flight
            wait_until, lambda: sending() == 4, timeout=10, what="4 sends"
        )
        courier.stop()
        return await delivery

    counts = with_courier(stop_midway)

    assert counts == {Ending.SENT: 4, Ending.POSTPONED: 16}
    ready = records.lrange(producer.keys.ready, 0, -1)
    assert len(ready) == 16 and set(ready) <= set(job_ids)
    states = Counter(s.state if s else None for s in producer.get_statuses(job_ids))
    assert states == {JobState.SENT: 4, JobState.QUEUED: 16}
