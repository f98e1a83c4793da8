"""The public surface: pinned names, a producer that loads no worker code, records and errors."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from datetime import UTC, datetime
from typing import Any

import fakeredis
import pytest

import producer
import worker
from producer import JobState, JobStatus, Producer, ProducerError, RedisUnavailable, keys
from producer.settings import ProducerSettings
from producer.status import Field
from producer.store import Store
from tests.support import queued_job_ids, wire_message, wire_messages

UNREACHABLE = "redis://127.0.0.1:1/0"
IMPORT_PROBE = (
    "import producer, sys; print(sorted(m for m in sys.modules "
    "if m.split('.')[0] in {'worker','requests','urllib3','httpx'}))"
)


def test_producer_exports_exactly_the_public_names() -> None:
    assert producer.__all__ == [
        "IdempotencyConflict",
        "JobState",
        "JobStatus",
        "Producer",
        "ProducerError",
        "RedisUnavailable",
        "ReplyButtonMessage",
        "ValidationError",
        "enqueue",
        "enqueue_many",
        "get_status",
        "reply_buttons",
    ]
    assert all(hasattr(producer, name) for name in producer.__all__)


def test_worker_exposes_only_the_celery_app() -> None:
    assert worker.__all__ == ["app"]
    assert worker.app.main == "zixflow_queue"


def test_importing_producer_loads_no_worker_code_and_no_http_client() -> None:
    loaded = subprocess.run(
        [sys.executable, "-c", IMPORT_PROBE], capture_output=True, text=True, check=True
    ).stdout.strip()
    assert loaded == "[]"


@pytest.mark.parametrize(
    "error", [producer.ValidationError, producer.IdempotencyConflict, RedisUnavailable]
)
def test_every_error_is_a_producer_error(error: type[Exception]) -> None:
    assert issubclass(error, ProducerError)


def test_error_families() -> None:
    assert issubclass(producer.ValidationError, ValueError)
    assert issubclass(producer.IdempotencyConflict, ValueError)
    assert issubclass(RedisUnavailable, ConnectionError)


# --- job status records ---

CREATED, UPDATED, SENT_AT, DUE = 1_700_000_000.25, 1_700_000_003.5, 1_700_000_003.0, 1_700_000_060.0


def at(seconds: float) -> datetime:
    return datetime.fromtimestamp(seconds, UTC)


def test_status_from_a_sent_record() -> None:
    result = {"status": True, "message": "Message sent successfully"}
    record = {
        Field.STATE: "sent", Field.ATTEMPTS: "2", Field.RESULT: json.dumps(result),
        Field.ERROR: "", Field.CREATED_AT: repr(CREATED), Field.UPDATED_AT: repr(UPDATED),
        Field.SENT_AT: repr(SENT_AT), Field.DUE_AT: repr(DUE), Field.RECLAIMS: "1",
        Field.DUPLICATES: "0", Field.REPLAYS: "3",
    }  # fmt: skip

    status = JobStatus.from_record("job-1", record)

    assert status == JobStatus(
        job_id="job-1", state=JobState.SENT, attempts=2, result=result, error=None,
        created_at=at(CREATED), updated_at=at(UPDATED), sent_at=at(SENT_AT),
        next_attempt_at=None, reclaims=1, duplicates=0, replays=3,
    )  # fmt: skip
    assert status.final


def record_of(view: dict[str, Any]) -> dict[str, str]:
    """A record hash holding what a status's JSON view shows."""
    record = {Field.STATE: view["state"], Field.ATTEMPTS: str(view["attempts"])}
    if view["error"]:
        record[Field.ERROR] = view["error"]
    times = {Field.CREATED_AT: "created_at", Field.UPDATED_AT: "updated_at",
             Field.SENT_AT: "sent_at", Field.DUE_AT: "next_attempt_at"}  # fmt: skip
    for field, name in times.items():
        if view[name]:
            record[field] = repr(datetime.fromisoformat(view[name]).timestamp())
    return record


def test_status_round_trips_through_its_json_view() -> None:
    record = {
        Field.STATE: "retrying", Field.ATTEMPTS: "3", Field.ERROR: "HTTP 500: (#2) later",
        Field.CREATED_AT: repr(CREATED), Field.UPDATED_AT: repr(UPDATED), Field.DUE_AT: repr(DUE),
    }  # fmt: skip
    status = JobStatus.from_record("job-2", record)

    view = status.as_dict()

    assert json.loads(json.dumps(view)) == view
    assert view["state"] == "retrying" and not status.final
    assert view["next_attempt_at"] == at(DUE).isoformat()
    assert JobStatus.from_record("job-2", record_of(view)) == status


def test_a_minimal_record_reads_with_defaults() -> None:
    status = JobStatus.from_record("job-3", {Field.STATE: "queued"})
    assert (status.state, status.attempts, status.result, status.error) == (
        JobState.QUEUED,
        0,
        None,
        None,
    )
    assert (status.created_at, status.reclaims, status.duplicates, status.replays) == (
        None,
        0,
        0,
        0,
    )


def test_enqueued_job_reads_back_as_queued(fake_producer: Producer) -> None:
    before = time.time()
    job_id = fake_producer.enqueue(wire_message())
    status = fake_producer.get_status(job_id)
    assert status is not None
    assert (status.job_id, status.state, status.attempts, status.final) == (
        job_id,
        JobState.QUEUED,
        0,
        False,
    )
    assert status.result is None and status.error is None
    assert status.created_at is not None
    assert before - 1 <= status.created_at.timestamp() <= time.time() + 1
    assert fake_producer.get_status("no-such-job") is None


# --- Redis trouble ---


@pytest.fixture
def unreachable() -> Producer:
    settings = ProducerSettings(redis_url=UNREACHABLE, socket_timeout=0.5, queue="zq-test")
    return Producer(settings, Store.connect(settings))


@pytest.mark.parametrize(
    ("call", "action"),
    [
        (lambda p: p.enqueue(wire_message()), "enqueue the job"),
        (lambda p: p.enqueue_many([wire_message(), wire_message()]), "enqueue the jobs"),
        (lambda p: p.get_status("job-1"), "read the job status"),
    ],
    ids=["enqueue", "enqueue_many", "get_status"],
)
def test_unreachable_redis_is_reported_as_such(
    unreachable: Producer, call: Any, action: str
) -> None:
    started = time.monotonic()
    with pytest.raises(RedisUnavailable) as refused:
        call(unreachable)
    assert time.monotonic() - started < 5
    assert f"could not {action}: Redis is unreachable" in str(refused.value)
    assert isinstance(refused.value, ConnectionError)


# --- records and queue in separate Redis servers ---


@pytest.fixture
def split_producer() -> Producer:
    records = fakeredis.FakeRedis(server=fakeredis.FakeServer(), decode_responses=True)
    broker = fakeredis.FakeRedis(server=fakeredis.FakeServer(), decode_responses=True)
    settings = ProducerSettings(redis_url="redis://records/0", queue="zq-test")
    return Producer(settings, Store(records, broker, shared=False))


def test_split_store_enqueue_writes_each_part_to_its_own_server(split_producer: Producer) -> None:
    job_id = split_producer.enqueue(wire_message())

    records, broker = split_producer.store.records, split_producer.store.broker
    assert records.hget(keys.job(job_id), Field.STATE) == "queued"
    assert records.exists("zq-test") == 0
    assert broker.exists(keys.job(job_id)) == 0
    assert queued_job_ids(split_producer.store, "zq-test") == [[job_id]]


def test_split_store_enqueue_many_writes_each_part_to_its_own_server(
    split_producer: Producer,
) -> None:
    job_ids = split_producer.enqueue_many([wire_message(), wire_message(to="14155550100")])

    records, broker = split_producer.store.records, split_producer.store.broker
    assert [records.hget(keys.job(job_id), Field.TO) for job_id in job_ids] == [
        "919876543210",
        "14155550100",
    ]
    assert records.exists("zq-test") == 0
    assert broker.keys("*") == ["zq-test"]
    assert queued_job_ids(split_producer.store, "zq-test") == [job_ids]


def test_split_store_enqueue_many_pushes_the_messages_after_the_records(
    split_producer: Producer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A worker taking a message at once must find its jobs' records."""
    records, broker = split_producer.store.records, split_producer.store.broker
    records_at_push: list[set[bytes | str]] = []
    push = broker.lpush

    def recording_push(queue: str, *messages: str) -> object:
        records_at_push.append(set(records.keys(keys.job("*"))))
        return push(queue, *messages)

    monkeypatch.setattr(broker, "lpush", recording_push)
    job_ids = split_producer.enqueue_many(wire_messages(250))

    assert records_at_push == [{keys.job(job_id) for job_id in job_ids}]  # one push, after all
    assert [job for chunk in queued_job_ids(split_producer.store, "zq-test") for job in chunk] == (
        job_ids
    )
