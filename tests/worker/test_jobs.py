"""Take, claim, finish, give back and upkeep, run as Lua on the real Redis."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable, Iterator
from itertools import pairwise
from typing import Any

import pytest
import redis
import redis.asyncio

from producer import JobState, Producer
from producer.deadletters import DeadLetter, DeadLetters
from producer.settings import ProducerSettings
from producer.store import Store, connection_options
from tests.support import wire_message, wire_messages
from worker.callbacks import CallbackClient
from worker.events import EventSender
from worker.jobs import Claim, Ending, Finish, JobRecords, Wakeups
from worker.maintenance import Maintenance
from worker.settings import WorkerSettings

QUEUE = "zq-jobs"


@pytest.fixture
def store(redis_url: str) -> Store:
    return Store.connect(ProducerSettings(redis_url=redis_url))


@pytest.fixture
def producer(redis_url: str, store: Store) -> Producer:
    return Producer(ProducerSettings(redis_url=redis_url, queue=QUEUE, prefix=None), store)


class Worker:
    """One worker's JobRecords and upkeep, driven from a synchronous test."""

    def __init__(self, runner: asyncio.Runner, settings: WorkerSettings, name: str) -> None:
        self.run = runner.run
        self.client = redis.asyncio.Redis.from_url(
            settings.redis_url, **connection_options(settings.socket_timeout)
        )
        self.records = JobRecords(self.client, settings, name, Wakeups(settings, None))
        self.known: set[str] = set()
        self.callbacks = runner.run(_callbacks())
        self.events = EventSender(self.client, settings, name, self.callbacks)
        self.upkeep = Maintenance(self.client, settings, self.records, self.events,
                                  lambda: self.known, Wakeups(settings, None))  # fmt: skip
        self.keys = settings.keys

    def take(self, count: int = 100) -> list[str]:
        return self.run(self.records.take(count))

    def claim(self, job_id: str) -> Claim:
        (claim,) = self.run(self.records.claim([job_id]))
        return claim

    def finish(self, job_id: str, verdict: Ending, *, attempt: int = 1, **fields: Any) -> str:
        (reply,) = self.run(self.records.finish([Finish(job_id, attempt, verdict, **fields)]))
        return reply


async def _callbacks() -> CallbackClient:
    return CallbackClient(5, public_only=False)


Factory = Callable[..., Worker]


@pytest.fixture
def workers(redis_url: str) -> Iterator[Factory]:
    with asyncio.Runner() as runner:
        built: list[Worker] = []

        def build(name: str = "w1", **overrides: Any) -> Worker:
            defaults: dict[str, Any] = {
                "recipient_interval": 0, "phone_rate": 1000, "max_rate_wait": 0.5,
                "redis_url": redis_url, "queue": QUEUE, "prefix": None,
            }  # fmt: skip
            built.append(Worker(runner, WorkerSettings(**{**defaults, **overrides}), name))
            return built[-1]

        yield build
        for worker in built:
            runner.run(worker.client.aclose())
            runner.run(worker.callbacks.close())


def held(store: Store, worker: Worker) -> list[str]:
    return store.records.zrange(worker.keys.held(worker.records.worker), 0, -1)  # type: ignore[return-value]


def record(store: Store, producer: Producer, job_id: str) -> dict[str, str]:
    return store.records.hgetall(producer.keys.job(job_id))  # type: ignore[return-value]


# --- take and wake-ups ---


def test_enqueue_wakes_the_workers_once_until_a_task_starts(
    producer: Producer, store: Store, workers: Factory
) -> None:
    first = producer.enqueue(wire_message())
    producer.enqueue_many(wire_messages(3))
    assert store.broker.llen(QUEUE) == 1  # one wake-up waits: no more are published
    worker = workers()
    taken = worker.take(2)
    assert taken[0] == first and len(taken) == 2
    # Starting a task used the wake-up up; more jobs wait, so the next task is woken.
    assert store.broker.llen(QUEUE) == 2
    assert set(held(store, worker)) == set(taken)


def test_a_job_on_the_ready_list_twice_is_taken_once(
    producer: Producer, store: Store, workers: Factory
) -> None:
    job_id = producer.enqueue(wire_message())
    store.records.lpush(producer.keys.ready, job_id)
    assert workers().take() == [job_id]


def test_deployments_sharing_a_database_never_see_each_others_jobs(
    redis_url: str, store: Store, workers: Factory
) -> None:
    alpha = Producer(ProducerSettings(redis_url=redis_url, queue="alpha", prefix=None), store)
    beta = Producer(ProducerSettings(redis_url=redis_url, queue="beta", prefix=None), store)
    alpha_job = alpha.enqueue(wire_message())
    beta_job = beta.enqueue(wire_message(), send_at=time.time() + 0.01)
    assert workers("a", queue="alpha").take() == [alpha_job]
    beta_worker = workers("b", queue="beta")
    wait = time.monotonic() + 5
    while not beta_worker.take() and time.monotonic() < wait:
        beta_worker.run(beta_worker.upkeep.tick())  # the due job moves to beta's ready list
    assert beta.get_status(beta_job) is not None
    assert alpha.get_status(beta_job) is None  # alpha cannot even read beta's records
    assert store.broker.llen("alpha") >= 1 and store.broker.llen("beta") >= 1


# --- claims ---


def test_claim_takes_a_queued_job_once(producer: Producer, workers: Factory) -> None:
    job_id = producer.enqueue(wire_message())
    worker = workers()
    assert worker.take() == [job_id]  # taking signs the worker in with a heartbeat
    first = worker.claim(job_id)
    assert first.ending is None
    assert (first.attempt, first.wait, first.reclaimed) == (1, 0.0, False)
    assert json.loads(first.message)["to"] == "919876543210"
    assert workers("w2").claim(job_id).ending is Ending.BUSY


def test_a_job_a_live_worker_gave_back_is_taken_over(producer: Producer, workers: Factory) -> None:
    job_id = producer.enqueue(wire_message())
    first = workers()
    assert first.take() == [job_id]
    assert first.claim(job_id).ending is None  # claimed, and then its answer lost:
    first.run(first.records.release([job_id]))  # the worker gives the job back
    second = workers("w2")
    assert second.take() == [job_id]
    claim = second.claim(job_id)
    assert claim.ending is None and claim.reclaimed  # not busy for ever: taken over


def test_claims_of_missing_finished_and_later_jobs(producer: Producer, workers: Factory) -> None:
    worker = workers()
    worker.run(worker.upkeep.tick())
    assert worker.claim("0" * 32).ending is Ending.MISSING
    sent, later = (
        producer.enqueue(wire_message()),
        producer.enqueue(wire_message(), send_at=time.time() + 60),
    )
    worker.claim(sent)
    assert worker.finish(sent, Ending.SENT, outcome="sent") == "sent"
    assert worker.claim(sent).ending is Ending.FINISHED
    assert worker.claim(later).ending is Ending.LATER


def test_a_dead_workers_send_is_taken_over_and_counted(
    producer: Producer, store: Store, workers: Factory
) -> None:
    job_id = producer.enqueue(wire_message())
    dead, alive = workers("dead"), workers("alive")
    dead.claim(job_id)
    store.records.zadd(producer.keys.workers, {"dead": time.time() - 1})  # its heartbeat lapsed
    taken_over = alive.claim(job_id)
    assert (taken_over.ending, taken_over.reclaimed, taken_over.attempt) == (None, True, 2)
    assert dead.finish(job_id, Ending.RETRY, outcome="transient", delay=1) == "not owner"
    assert alive.finish(job_id, Ending.SENT, outcome="sent", attempt=2) == "sent"
    assert dead.finish(job_id, Ending.SENT, outcome="sent") == "already sent"
    status = producer.get_status(job_id)
    assert status is not None
    assert (status.state, status.attempts, status.reclaims, status.duplicates) == ("sent", 2, 1, 1)


def test_claims_never_count_past_the_attempt_budget(
    producer: Producer, store: Store, workers: Factory
) -> None:
    job_id = producer.enqueue(wire_message())
    for attempt in range(3):  # three workers each die mid-send
        worker = workers(f"w{attempt}", max_attempts=3)
        assert worker.claim(job_id).attempt == attempt + 1
        store.records.zadd(producer.keys.workers, {f"w{attempt}": 0})
    last = workers("last", max_attempts=3)
    claim = last.claim(job_id)
    assert (claim.exhausted, claim.attempt) == (True, 3)
    assert record(store, producer, job_id)["attempts"] == "3"


def test_a_broken_record_fails_alone(producer: Producer, store: Store, workers: Factory) -> None:
    broken, fine = producer.enqueue_many(wire_messages(2))
    store.records.hset(producer.keys.job(broken), "attempts", "many")
    claims = workers().run(workers().records.claim([broken, fine]))
    assert [claim.ending for claim in claims] == [Ending.BROKEN, None]
    status = producer.get_status(broken)
    assert status is not None and status.state is JobState.FAILED
    assert status.error is not None and status.error.startswith("broken job record")
    letter = DeadLetters(store, producer.settings).get(broken)
    assert letter is not None and letter.reason == status.error


# --- verdicts ---


def test_sent_verdict_keeps_the_answer(producer: Producer, store: Store, workers: Factory) -> None:
    job_id = producer.enqueue(wire_message(submissionStatus=True))
    worker = workers()
    worker.take()
    worker.claim(job_id)
    worker.finish(job_id, Ending.SENT, outcome="sent", result={"status": True, "messageId": "m"})
    status = producer.get_status(job_id)
    assert status is not None
    assert (status.state, status.attempts, status.error) == ("sent", 1, None)
    assert status.result == {"status": True, "messageId": "m"}
    assert status.sent_at is not None
    assert held(store, worker) == []


def test_a_slow_send_that_went_through_after_all_ends_the_dead_letter(
    producer: Producer, store: Store, workers: Factory
) -> None:
    """The slow worker's send succeeds after its taker's send failed the job for good."""
    job_id = producer.enqueue(wire_message())
    slow, taker = workers("slow"), workers("taker")
    slow.claim(job_id)
    store.records.zadd(producer.keys.workers, {"slow": time.time() - 1})  # it seemed dead
    assert taker.claim(job_id).reclaimed is True
    letter = {"id": job_id, "job_id": job_id, "reason": "HTTP 400: closed"}
    taker.finish(job_id, Ending.FAILED, attempt=2, outcome="permanent", error="HTTP 400: closed",
                 dead_letter=letter)  # fmt: skip
    letters = DeadLetters(store, producer.settings)
    assert letters.get(job_id) is not None

    assert slow.finish(job_id, Ending.SENT, outcome="sent") == "sent"
    status = producer.get_status(job_id)
    assert status is not None and status.state == "sent"
    assert letters.get(job_id) is None
    assert letters.replay([job_id]) == []  # and a replay would not send it a third time


def test_retry_verdict_schedules_the_job(
    producer: Producer, store: Store, workers: Factory
) -> None:
    job_id = producer.enqueue(wire_message())
    worker = workers()
    worker.claim(job_id)
    worker.finish(job_id, Ending.RETRY, outcome="transient", error="HTTP 500", delay=30)
    status = producer.get_status(job_id)
    assert status is not None and status.state == "retrying" and status.error == "HTTP 500"
    due = store.records.zscore(producer.keys.schedule, job_id)
    assert due is not None and due > time.time() + 25
    assert status.next_attempt_at is not None
    assert worker.claim(job_id).ending is Ending.LATER
    history = store.records.lrange(producer.keys.history(job_id), 0, -1)
    assert [json.loads(entry)["event"] for entry in history] == ["retry"]


def test_failed_verdict_dead_letters_the_job(
    producer: Producer, store: Store, workers: Factory
) -> None:
    job_id = producer.enqueue(wire_message())
    worker = workers()
    worker.claim(job_id)
    letter = {"id": job_id, "job_id": job_id, "reason": "window closed", "at": time.time()}
    worker.finish(job_id, Ending.FAILED, outcome="permanent", error="window closed",
                  dead_letter=letter)  # fmt: skip
    status = producer.get_status(job_id)
    assert status is not None and (status.state, status.error) == ("failed", "window closed")
    entry = DeadLetters(store, producer.settings).get(job_id)
    assert entry is not None and entry.reason == "window closed"


def test_a_verdict_written_again_after_a_lost_reply_is_no_duplicate(
    producer: Producer, workers: Factory
) -> None:
    job_id = producer.enqueue(wire_message())
    worker = workers()
    worker.claim(job_id)
    assert worker.finish(job_id, Ending.SENT, outcome="sent") == "sent"
    assert worker.finish(job_id, Ending.SENT, outcome="sent") == "sent"  # the retried write
    status = producer.get_status(job_id)
    assert status is not None and (status.state, status.duplicates) == ("sent", 0)
    assert worker.finish(job_id, Ending.SENT, outcome="sent", attempt=2) == "already sent"
    status = producer.get_status(job_id)
    assert status is not None and status.duplicates == 1


def test_replay_requeues_failed_jobs_only(
    producer: Producer, store: Store, workers: Factory
) -> None:
    failed, sent = producer.enqueue_many(wire_messages(2))
    worker = workers()
    letters = DeadLetters(store, producer.settings)
    for job_id in (failed, sent):
        worker.claim(job_id)
        letters.add(DeadLetter(id=job_id, job_id=job_id, reason="HTTP 500"))
    worker.finish(failed, Ending.FAILED, outcome="transient", error="HTTP 500",
                  dead_letter={"id": failed, "job_id": failed, "reason": "HTTP 500"})  # fmt: skip
    worker.finish(sent, Ending.SENT, outcome="sent")  # it went through in the end

    assert letters.replay([failed, sent]) == [failed]
    statuses = producer.get_statuses([failed, sent])
    assert [s.state if s else None for s in statuses] == ["queued", "sent"]
    assert letters.entries() == []


# --- rate limits ---


def test_phone_rate_reserves_slots_then_defers(producer: Producer, workers: Factory) -> None:
    worker = workers(phone_rate=10, max_rate_wait=0.25)
    claims = [worker.claim(job_id) for job_id in producer.enqueue_many(wire_messages(6))]
    claimed = [c for c in claims if c.ending is None]
    # Paced at 90% of 10/s: slots 0.111 s apart, so waits of 0, 0.111 and 0.222 fit in 0.25 s.
    # Separate claims, each a little later: every wait is up to a few ms shorter than its slot.
    assert [c.wait for c in claimed] == pytest.approx([0.0, 0.107, 0.218], abs=0.006)
    assert {c.ending for c in claims[3:]} == {Ending.DEFERRED}


def test_deferred_jobs_are_spread_at_the_limits_pace(
    producer: Producer, store: Store, workers: Factory
) -> None:
    worker = workers(phone_rate=1000, recipient_interval=6, max_rate_wait=0.1)
    job_ids = [producer.enqueue(wire_message()) for _ in range(4)]
    claims = [worker.claim(job_id) for job_id in job_ids]
    assert claims[0].ending is None and {c.ending for c in claims[1:]} == {Ending.DEFERRED}
    dues = sorted(store.records.zscore(producer.keys.schedule, j) or 0 for j in job_ids[1:])
    gaps = [later - earlier for earlier, later in pairwise(dues)]
    assert all(gap == pytest.approx(6, abs=0.01) for gap in gaps)
    status = producer.get_status(job_ids[-1])
    assert status is not None and status.next_attempt_at is not None


def test_per_phone_overrides(producer: Producer, workers: Factory) -> None:
    worker = workers(phone_rate=1, phone_rates={"1234567890": 1000}, max_rate_wait=0.05)
    job_ids = producer.enqueue_many(wire_messages(3))
    assert {worker.claim(j).ending for j in job_ids} == {None}


# --- upkeep ---


def test_tick_moves_due_jobs_to_the_ready_list_and_wakes_a_task(
    producer: Producer, store: Store, workers: Factory
) -> None:
    job_id = producer.enqueue(wire_message(), send_at=time.time() + 0.05)
    assert store.broker.llen(QUEUE) == 0  # nothing ready yet: no wake-up
    worker = workers()
    deadline = time.monotonic() + 5
    while not store.records.llen(producer.keys.ready) and time.monotonic() < deadline:
        worker.run(worker.upkeep.tick())
    assert store.records.lrange(producer.keys.ready, 0, -1) == [job_id]
    assert store.broker.llen(QUEUE) == 1


def test_a_lost_wake_up_is_replaced(producer: Producer, store: Store, workers: Factory) -> None:
    producer.enqueue(wire_message())
    store.broker.delete(QUEUE)  # the wake-up went with a killed worker
    worker = workers()
    worker.run(worker.upkeep.tick())
    assert store.broker.llen(QUEUE) == 0  # its flag still says one waits...
    store.records.delete(producer.keys.wakeup)  # ...until the flag runs out
    worker.run(worker.upkeep.tick())
    assert store.broker.llen(QUEUE) == 1


def test_recover_gives_back_the_jobs_of_a_dead_worker(
    producer: Producer, store: Store, workers: Factory
) -> None:
    job_ids = producer.enqueue_many(wire_messages(3))
    dead, alive = workers("dead"), workers("alive")
    dead.take()
    dead.claim(job_ids[0])  # one was being sent when it died
    alive.run(alive.upkeep.recover())
    assert store.records.llen(producer.keys.ready) == 0  # its heartbeat has not lapsed
    store.records.zadd(producer.keys.workers, {"dead": time.time() - 1})
    alive.run(alive.upkeep.recover())
    assert held(store, dead) == []
    taken = alive.take()
    assert sorted(taken) == sorted(job_ids)
    assert alive.claim(job_ids[0]).reclaimed is True


def test_reconcile_gives_back_held_jobs_the_worker_lost_track_of(
    producer: Producer, store: Store, workers: Factory
) -> None:
    lost, known = producer.enqueue_many(wire_messages(2))
    worker = workers()
    worker.take()
    worker.known.add(known)
    an_hour_ago = time.time() - 3600
    store.records.zadd(worker.keys.held(worker.records.worker), {lost: an_hour_ago})
    worker.run(worker.upkeep.reconcile())
    assert held(store, worker) == [known]
    assert store.records.lrange(producer.keys.ready, 0, -1) == [lost]


def test_sweep_makes_ready_again_jobs_nothing_moved(
    producer: Producer, store: Store, workers: Factory
) -> None:
    job_id = producer.enqueue(wire_message())
    store.records.delete(producer.keys.ready)  # lost with a Redis that lost its data
    store.records.zadd(producer.keys.unfinished, {job_id: time.time() - 3600})
    worker = workers(stale_after=600)
    worker.run(worker.upkeep.sweep())
    assert store.records.lrange(producer.keys.ready, 0, -1) == [job_id]


def test_release_puts_jobs_at_the_front_of_the_ready_list(
    producer: Producer, store: Store, workers: Factory
) -> None:
    first, second = producer.enqueue_many(wire_messages(2))
    worker = workers()
    worker.take(1)
    worker.run(worker.records.release([first]))
    assert workers("w2").take(1) == [first]
    assert second in store.records.lrange(producer.keys.ready, 0, -1)


def test_upkeep_rides_out_redis_trouble(
    producer: Producer, workers: Factory, caplog: pytest.LogCaptureFixture
) -> None:
    worker = workers()

    async def tick() -> None:
        raise redis.OutOfMemoryError("OOM command not allowed when used memory > 'maxmemory'.")

    worker.upkeep.tick = tick  # type: ignore[method-assign]

    async def one_round() -> None:
        task = asyncio.create_task(worker.upkeep.run())
        await asyncio.sleep(0)
        worker.upkeep.stop()
        await task

    worker.run(one_round())
    assert "tick failed (OutOfMemoryError" in caplog.text
