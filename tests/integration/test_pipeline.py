"""End to end: real worker processes, the real Redis, and the sandbox over HTTP."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest
import redis

from producer import JobState, Producer
from producer.deadletters import DeadLetters
from tests.support import (
    SANDBOX_KEY,
    WorkerProcess,
    all_final,
    final_status,
    wait_until,
    wire_message,
    wire_messages,
)
from zixflow_queue.sandbox import FaultPlan, Sandbox

pytestmark = pytest.mark.integration

Start = Callable[..., WorkerProcess]


def stored_value(client: redis.Redis, key: str) -> object:
    """The value of one key, read by its type (DUMP would compress long strings)."""
    readers: dict[str, Callable[[str], object]] = {
        "none": lambda _: None,  # expired since the scan
        "string": client.get,
        "hash": client.hgetall,
        "list": lambda k: client.lrange(k, 0, -1),
        "set": lambda k: sorted(client.smembers(k)),
        "zset": lambda k: client.zrange(k, 0, -1, withscores=True),
    }
    kind = client.type(key)
    assert kind in readers, f"{key} is a {kind!r}: read it here too"
    return readers[kind](key)


def requests_for(sandbox: Sandbox, job_id: str) -> list[dict[str, Any]]:
    """What the sandbox received for one job, in order."""
    return [r for r in sandbox.requests() if r["job_id"] == job_id]


def test_sent_first_time(
    producer_for: Callable[..., Producer], start_worker: Start, sandbox: Sandbox
) -> None:
    start_worker()
    producer = producer_for()
    job_id = producer.enqueue(wire_message())

    status = final_status(producer, job_id)
    assert (status.state, status.attempts, status.error) == (JobState.SENT, 1, None)
    assert status.result is None  # only kept when the message asks for submissionStatus
    received = requests_for(sandbox, job_id)
    assert [r["answer"] for r in received] == ["ok"]
    assert received[0]["to"] == "919876543210"


def test_sent_after_server_errors(
    producer_for: Callable[..., Producer], start_worker: Start, sandbox: Sandbox
) -> None:
    sandbox.configure(FaultPlan(script={"919800000001": ["error500", "error500"]}))
    start_worker()
    producer = producer_for()
    job_id = producer.enqueue(wire_message(to="919800000001"))

    status = final_status(producer, job_id)
    assert (status.state, status.attempts) == (JobState.SENT, 3)
    assert [r["answer"] for r in requests_for(sandbox, job_id)] == ["error500", "error500", "ok"]


def test_throttled_send_waits_for_retry_after(
    producer_for: Callable[..., Producer], start_worker: Start, sandbox: Sandbox
) -> None:
    sandbox.configure(FaultPlan(retry_after=1.5, script={"919800000002": ["throttle429"]}))
    start_worker()
    producer = producer_for()
    job_id = producer.enqueue(wire_message(to="919800000002"))

    status = final_status(producer, job_id)
    assert (status.state, status.attempts) == (JobState.SENT, 2)
    first, second = requests_for(sandbox, job_id)
    assert second["t"] - first["t"] >= 1.5


def test_closed_window_fails_without_retry(
    producer_for: Callable[..., Producer], start_worker: Start, sandbox: Sandbox
) -> None:
    sandbox.configure(FaultPlan(script={"919800000003": ["window"]}))
    start_worker()
    producer = producer_for()
    job_id = producer.enqueue(wire_message(to="919800000003"))

    status = final_status(producer, job_id)
    assert (status.state, status.attempts) == (JobState.FAILED, 1)
    assert status.error is not None and "131047" in status.error
    assert len(requests_for(sandbox, job_id)) == 1
    letter = DeadLetters(producer.store, producer.settings).get(job_id)
    assert letter is not None and letter.status_code == 400


def test_bad_key_fails_without_retry(
    producer_for: Callable[..., Producer], start_worker: Start, sandbox: Sandbox
) -> None:
    start_worker(env={"ZIXFLOW_API_KEY": "not-the-key"})
    producer = producer_for()
    job_id = producer.enqueue(wire_message())

    status = final_status(producer, job_id)
    assert (status.state, status.attempts) == (JobState.FAILED, 1)
    assert status.error is not None and "Unauthorised" in status.error
    assert [r["answer"] for r in requests_for(sandbox, job_id)] == ["unauthorised"]


def test_dropped_connection_is_retried(
    producer_for: Callable[..., Producer], start_worker: Start, sandbox: Sandbox
) -> None:
    sandbox.configure(FaultPlan(script={"919800000004": ["drop"]}))
    start_worker()
    producer = producer_for()
    job_id = producer.enqueue(wire_message(to="919800000004"))

    status = final_status(producer, job_id)
    assert (status.state, status.attempts) == (JobState.SENT, 2)
    assert [r["answer"] for r in requests_for(sandbox, job_id)] == ["drop", "ok"]


def test_submission_status_result_is_polled(
    producer_for: Callable[..., Producer], start_worker: Start
) -> None:
    start_worker()
    producer = producer_for()
    job_id = producer.enqueue(wire_message(submissionStatus=True))

    status = final_status(producer, job_id)
    assert status.state is JobState.SENT
    assert status.result is not None
    assert status.result["status"] is True
    assert len(status.result["messageId"]) == 24


def test_idempotent_enqueue_sends_once(
    producer_for: Callable[..., Producer], start_worker: Start, sandbox: Sandbox
) -> None:
    producer = producer_for()
    job_ids = {producer.enqueue(wire_message(), idempotency_key="order-7") for _ in range(3)}
    assert len(job_ids) == 1
    start_worker()
    (job_id,) = job_ids
    assert final_status(producer, job_id).state is JobState.SENT
    assert len(requests_for(sandbox, job_id)) == 1


def test_batch_is_delivered(
    producer_for: Callable[..., Producer], start_worker: Start, sandbox: Sandbox
) -> None:
    start_worker()
    producer = producer_for()
    job_ids = producer.enqueue_many(wire_messages(300))

    statuses = [final_status(producer, job_id) for job_id in job_ids]
    assert {s.state for s in statuses} == {JobState.SENT}
    assert {r["job_id"] for r in sandbox.requests()} == set(job_ids)


def test_at_full_speed_each_job_is_sent_exactly_once(
    producer_for: Callable[..., Producer], start_worker: Start, sandbox: Sandbox
) -> None:
    """Two workers at their default concurrency, batches and single jobs mixed, no latency."""
    start_worker()
    start_worker()
    producer = producer_for()
    messages = wire_messages(3_000)
    job_ids = [job for start in range(0, 2_500, 500)
               for job in producer.enqueue_many(messages[start : start + 500])]  # fmt: skip
    job_ids += [producer.enqueue(message) for message in messages[2_500:]]

    wait_until(lambda: all_final(producer, job_ids), timeout=120, what="3,000 jobs to finish")
    statuses = producer.get_statuses(job_ids)
    assert {s.state if s else None for s in statuses} == {JobState.SENT}
    assert {s.attempts if s else None for s in statuses} == {1}
    received = sorted(r["job_id"] for r in sandbox.requests())
    assert received == sorted(job_ids)  # each job once, and nothing else


def test_api_key_never_reaches_redis_or_logs(
    producer_for: Callable[..., Producer],
    start_worker: Start,
    sandbox: Sandbox,
    real_redis: redis.Redis,
) -> None:
    sandbox.configure(FaultPlan(script={"919800000005": ["error500", "unauthorised"]}))
    worker = start_worker("--loglevel=DEBUG")
    producer = producer_for()
    job_ids = [
        producer.enqueue(wire_message()),
        producer.enqueue(wire_message(to="919800000005")),
    ]
    for job_id in job_ids:
        final_status(producer, job_id)

    stored = list(real_redis.scan_iter("*"))
    assert stored  # the jobs' records at least
    for key in stored:
        assert SANDBOX_KEY not in key
        assert SANDBOX_KEY not in json.dumps(stored_value(real_redis, key)), key
    assert SANDBOX_KEY not in worker.log_text()


def test_worker_refuses_to_start_without_a_key(start_worker: Start) -> None:
    worker = start_worker(env={"ZIXFLOW_API_KEY": ""}, ready=False)
    code = worker.process.wait(timeout=30)
    assert code != 0
    assert "ZIXFLOW_API_KEY is not set" in worker.log_text()


@pytest.mark.parametrize(
    ("env", "line"),
    [
        ({"ZIXFLOW_API_KEY": "sk-live-1\n"}, "ZIXFLOW_API_KEY: has whitespace around it"),
        ({"ZIXFLOW_BASE_URL": "127.0.0.1:8088"}, "ZIXFLOW_BASE_URL='127.0.0.1:8088': must be an"),
        ({"ZQ_PHONE_RATES": '{"PAUSED": 0}'}, "ZQ_PHONE_RATES="),
        ({"ZQ_BATCH_SIZE": "abc"}, "ZQ_BATCH_SIZE='abc': "),
        ({"REDIS_URL": "localhost:6379"}, "REDIS_URL='localhost:6379': must be a Redis URL"),
        ({"ZQ_CALLBACK_URL": "http://127.0.0.1:9/hooks"}, "ZQ_WEBHOOK_SECRET is not set"),
    ],
    ids=["key with a newline", "base URL without scheme", "a rate of 0", "batch size",
         "Redis URL without scheme", "events without a secret"],
)  # fmt: skip
def test_a_misconfigured_worker_refuses_to_start_with_one_line(
    start_worker: Start, env: dict[str, str], line: str
) -> None:
    worker = start_worker(env=env, ready=False)
    assert worker.process.wait(timeout=30) == 2
    errors = [text for text in worker.log_text().splitlines() if text.startswith("error:")]
    assert len(errors) == 1 and line in errors[0], worker.log_text()[-2000:]
    assert "Traceback" not in worker.log_text()
    assert "sk-live-1" not in worker.log_text()
