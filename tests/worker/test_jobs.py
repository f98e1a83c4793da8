"""Claims, verdicts, the schedule and the reaper, run as Lua on the real Redis."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable, Iterator
from itertools import pairwise
from typing import Any

import pytest

from producer import Producer, keys
from producer.deadletters import DeadLetters
from producer.store import Store
from tests.support import wire_message, wire_messages
from worker.jobs import Claim, ClaimResult, Finish, JobRecords, Verdict
from worker.runtime import async_redis
from worker.scheduler import Scheduler
from worker.settings import WorkerSettings

Factory = Callable[..., "Records"]


@pytest.fixture
def store(redis_url: str) -> Store:
    return Store.connect(WorkerSettings(redis_url=redis_url))


@pytest.fixture
def producer(store: Store) -> Producer:
    return Producer(WorkerSettings(redis_url="redis://unused", queue="zq-jobs"), store)


class Records:
    """JobRecords driven from a synchronous test, a job at a time or many in one call."""

    def __init__(self, runner: asyncio.Runner, records: JobRecords) -> None:
        self.run = runner.run
        self.batch = records

    def claim(self, job_id: str) -> Claim:
        (claim,) = self.run(self.batch.claim([job_id]))
        return claim

    def finish(self, job_id: str, verdict: Verdict, *, attempt: int = 1, **fields: Any) -> str:
        (reply,) = self.run(self.batch.finish([Finish(job_id, attempt, verdict, **fields)]))
        return reply


@pytest.fixture
def records(redis_url: str) -> Iterator[Factory]:
    with asyncio.Runner() as runner:
        clients: list[JobRecords] = []

        def build(worker: str = "w1", **overrides: object) -> Records:
            defaults: dict[str, object] = {
                "recipient_interval": 0,
                "phone_rate": 1000,
                "max_rate_wait": 0.5,
                "redis_url": redis_url,
            }
            settings = WorkerSettings(**{**defaults, **overrides})
            clients.append(JobRecords(async_redis(settings), settings, worker))
            return Records(runner, clients[-1])

        yield build
        for client in clients:
            runner.run(client.close())


def test_claims_and_verdicts_of_many_jobs_in_one_call(producer: Producer, records: Factory) -> None:
    job_ids = [producer.enqueue(message) for message in wire_messages(3)]
    jobs = records()

    claims = jobs.run(jobs.batch.claim(["nope", *job_ids, job_ids[0]]))
    replies = jobs.run(jobs.batch.finish([
        Finish(job_ids[0], 1, Verdict.SENT, "sent"),
        Finish(job_ids[1], 1, Verdict.RETRY, "transient", error="HTTP 500", delay=60),
        Finish(job_ids[2], 1, Verdict.FAILED, "permanent", error="closed", dead_letter={"id": "x"}),
        Finish(job_ids[0], 2, Verdict.SENT, "sent"),
    ]))  # fmt: skip

    assert [c.result for c in claims] == ["missing", "claimed", "claimed", "claimed", "busy"]
    assert replies == ["sent", "retry", "failed", "already sent"]
    statuses = producer.get_statuses(job_ids)
    assert [s.state if s else None for s in statuses] == ["sent", "retrying", "failed"]
    assert statuses[0] is not None and statuses[0].duplicates == 1


def test_claim_takes_a_queued_job_once(producer: Producer, records: Factory) -> None:
    job_id = producer.enqueue(wire_message())
    first = records().claim(job_id)
    assert first.result is ClaimResult.CLAIMED
    assert (first.attempt, first.wait, first.reclaimed) == (1, 0.0, False)
    assert json.loads(first.message)["to"] == "919876543210"
    assert records("w2").claim(job_id).result is ClaimResult.BUSY


def test_claim_of_unknown_and_finished_jobs(producer: Producer, records: Factory) -> None:
    assert records().claim("nope").result is ClaimResult.MISSING
    job_id = producer.enqueue(wire_message())
    jobs = records()
    jobs.claim(job_id)
    assert jobs.finish(job_id, Verdict.SENT, outcome="sent") == "sent"
    assert jobs.claim(job_id).result is ClaimResult.DONE


def test_sent_verdict_clears_the_claim(producer: Producer, records: Factory, store: Store) -> None:
    job_id = producer.enqueue(wire_message(submissionStatus=True))
    jobs = records()
    jobs.claim(job_id)
    assert store.records.zscore(keys.LEASES, job_id) is not None
    jobs.finish(job_id, Verdict.SENT, outcome="sent", result={"status": True, "messageId": "m"})
    status = producer.get_status(job_id)
    assert status is not None
    assert (status.state, status.attempts, status.error) == ("sent", 1, None)
    assert status.result == {"status": True, "messageId": "m"}
    assert status.sent_at is not None
    assert store.records.zscore(keys.LEASES, job_id) is None


def test_retry_verdict_schedules_and_hides_the_job_until_due(
    producer: Producer, records: Factory, store: Store
) -> None:
    job_id = producer.enqueue(wire_message())
    jobs = records()
    jobs.claim(job_id)
    jobs.finish(job_id, Verdict.RETRY, outcome="transient", error="HTTP 500", delay=30)
    status = producer.get_status(job_id)
    assert status is not None and status.state == "retrying" and status.error == "HTTP 500"
    due = store.records.zscore(keys.SCHEDULE, job_id)
    assert due is not None and due > time.time() + 25
    assert jobs.claim(job_id).result is ClaimResult.LATER
    events = [json.loads(e) for e in store.records.lrange(keys.events(job_id), 0, -1)]
    assert [e["event"] for e in events] == ["retry"]


def test_failed_verdict_dead_letters_the_job(
    producer: Producer, records: Factory, store: Store
) -> None:
    job_id = producer.enqueue(wire_message())
    jobs = records()
    jobs.claim(job_id)
    letter = {"id": job_id, "job_id": job_id, "reason": "window closed", "at": time.time()}
    jobs.finish(job_id, Verdict.FAILED, outcome="permanent", error="window closed",
                dead_letter=letter)  # fmt: skip
    status = producer.get_status(job_id)
    assert status is not None and (status.state, status.error) == ("failed", "window closed")
    entry = DeadLetters(store, "zq-jobs").get(job_id)
    assert entry is not None and entry.reason == "window closed"


def test_a_late_verdict_from_a_replaced_worker_is_ignored_unless_sent(
    producer: Producer, records: Factory, store: Store
) -> None:
    job_id = producer.enqueue(wire_message())
    slow, fast = records("slow"), records("fast")
    slow.claim(job_id)
    store.records.hset(keys.job(job_id), "lease_until", time.time() - 1)  # slow's claim ran out
    assert fast.claim(job_id).reclaimed is True
    assert slow.finish(job_id, Verdict.RETRY, outcome="transient", delay=1) == "not owner"
    assert fast.finish(job_id, Verdict.SENT, outcome="sent", attempt=2) == "sent"
    assert slow.finish(job_id, Verdict.SENT, outcome="sent") == "already sent"
    status = producer.get_status(job_id)
    assert status is not None
    assert (status.state, status.attempts, status.reclaims, status.duplicates) == ("sent", 2, 1, 1)


def test_a_verdict_written_again_after_a_lost_reply_is_no_duplicate(
    producer: Producer, records: Factory
) -> None:
    job_id = producer.enqueue(wire_message())
    jobs = records()
    jobs.claim(job_id)
    assert jobs.finish(job_id, Verdict.SENT, outcome="sent") == "sent"
    assert jobs.finish(job_id, Verdict.SENT, outcome="sent") == "sent"  # the retried write
    status = producer.get_status(job_id)
    assert status is not None and (status.state, status.duplicates) == ("sent", 0)
    # A send from another claim of the same worker is a duplicate all the same.
    assert jobs.finish(job_id, Verdict.SENT, outcome="sent", attempt=2) == "already sent"
    status = producer.get_status(job_id)
    assert status is not None and status.duplicates == 1


def test_phone_rate_reserves_slots_then_defers(producer: Producer, records: Factory) -> None:
    jobs = records(phone_rate=10, max_rate_wait=0.25)
    job_ids = [producer.enqueue(message) for message in wire_messages(6)]
    claims = [jobs.claim(job_id) for job_id in job_ids]
    claimed = [c for c in claims if c.result is ClaimResult.CLAIMED]
    # 10/s with no burst: slots 0.1 s apart, so waits of about 0, 0.1 and 0.2 fit in 0.25 s.
    assert len(claimed) == 3
    assert [round(c.wait, 1) for c in claimed] == [0.0, 0.1, 0.2]
    assert {c.result for c in claims[3:]} == {ClaimResult.DEFERRED}


def test_deferred_jobs_are_spread_at_the_limits_pace(
    producer: Producer, records: Factory, store: Store
) -> None:
    jobs = records(phone_rate=1000, recipient_interval=6, max_rate_wait=0.1)
    job_ids = [producer.enqueue(wire_message()) for _ in range(4)]
    results = [jobs.claim(job_id).result for job_id in job_ids]
    assert results[0] is ClaimResult.CLAIMED
    dues = sorted(store.records.zscore(keys.SCHEDULE, j) or 0 for j in job_ids[1:])
    gaps = [later - earlier for earlier, later in pairwise(dues)]
    assert all(gap == pytest.approx(6, abs=0.01) for gap in gaps)


def test_per_phone_overrides(producer: Producer, records: Factory) -> None:
    jobs = records(phone_rate=1, phone_rates={"1234567890": 1000}, max_rate_wait=0.05)
    job_ids = [producer.enqueue(message) for message in wire_messages(3)]
    assert {jobs.claim(j).result for j in job_ids} == {ClaimResult.CLAIMED}


def test_scheduler_publishes_due_jobs_and_reaps_dead_claims(
    producer: Producer, records: Factory, store: Store
) -> None:
    settings = WorkerSettings(queue="zq-jobs")
    due_job = producer.enqueue(wire_message())
    stuck_job = producer.enqueue(wire_message(to="919800000002"))
    store.broker.delete("zq-jobs")
    jobs = records()
    jobs.claim(due_job)
    jobs.finish(due_job, Verdict.RETRY, outcome="transient", delay=0)
    jobs.claim(stuck_job)
    expired = time.time() - 1  # as if the claiming worker died a minute ago
    store.records.zadd(keys.LEASES, {stuck_job: expired})
    store.records.hset(keys.job(stuck_job), "lease_until", expired)

    assert Scheduler(store, settings).tick() == 2
    assert store.records.zcard(keys.SCHEDULE) == 0
    assert store.broker.llen("zq-jobs") == 1
    assert records("w2").claim(stuck_job).reclaimed is True
