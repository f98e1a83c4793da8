"""The public surface: pinned names, a producer that loads no worker code, records, settings."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from datetime import UTC, datetime
from typing import Any, cast

import fakeredis
import pytest

import producer
import worker
from producer import (
    ConfigurationError,
    IdempotencyConflict,
    JobState,
    JobStatus,
    OutcomeUnknown,
    Producer,
    ProducerError,
    RedisUnavailable,
    StorageError,
    ValidationError,
)
from producer.record import Field
from producer.settings import ProducerSettings, load_settings
from producer.store import Store
from tests.support import wire_message, wire_messages

UNREACHABLE = "redis://127.0.0.1:1/0"
FORBIDDEN_ON_IMPORT = ["aiohttp", "billiard", "celery", "httpx", "kombu", "requests", "urllib3",
                       "worker"]  # fmt: skip
IMPORT_PROBE = (
    "import producer, sys; print(sorted({m.split('.')[0] for m in sys.modules} & set(sys.argv)))"
)


def test_producer_exports_exactly_the_public_names() -> None:
    assert producer.__all__ == [
        "ConfigurationError",
        "IdempotencyConflict",
        "InvalidEvent",
        "Job",
        "JobState",
        "JobStatus",
        "OutcomeUnknown",
        "Producer",
        "ProducerError",
        "RedisUnavailable",
        "ReplyButtonMessage",
        "StorageError",
        "ValidationError",
        "cancel",
        "enqueue",
        "enqueue_many",
        "get_status",
        "reply_buttons",
        "verify_event",
    ]
    assert all(hasattr(producer, name) for name in producer.__all__)


def test_worker_exposes_only_the_celery_app() -> None:
    assert worker.__all__ == ["app"]
    assert worker.app.main == "zixflow_queue"


def test_importing_producer_loads_no_worker_code_and_no_http_client() -> None:
    probe = [sys.executable, "-c", IMPORT_PROBE, *FORBIDDEN_ON_IMPORT]
    loaded = subprocess.run(probe, capture_output=True, text=True, check=True).stdout.strip()
    assert loaded == "[]"


def test_the_import_probe_sees_a_module_that_is_loaded() -> None:
    """The probe above would pass vacuously if it could not see a loaded module."""
    probe = [sys.executable, "-c", "import kombu; " + IMPORT_PROBE, *FORBIDDEN_ON_IMPORT]
    loaded = subprocess.run(probe, capture_output=True, text=True, check=True).stdout.strip()
    assert loaded == "['kombu']"


@pytest.mark.parametrize(
    "error",
    [ValidationError, IdempotencyConflict, ConfigurationError, StorageError, RedisUnavailable,
     OutcomeUnknown],
)  # fmt: skip
def test_every_error_is_a_producer_error(error: type[Exception]) -> None:
    assert issubclass(error, ProducerError)


def test_error_families() -> None:
    assert issubclass(ValidationError, ValueError)
    assert issubclass(IdempotencyConflict, ValueError)
    assert not issubclass(ConfigurationError, ValueError | ConnectionError)
    for storage_error in (RedisUnavailable, OutcomeUnknown):
        assert issubclass(storage_error, StorageError)
        assert issubclass(storage_error, ConnectionError)
    assert not issubclass(RedisUnavailable, OutcomeUnknown)
    assert not issubclass(OutcomeUnknown, RedisUnavailable)
    assert StorageError("x").enqueued == ()
    assert OutcomeUnknown("x", enqueued=["a", "b"]).enqueued == ("a", "b")


# --- job status records ---

CREATED, UPDATED, SENT_AT, DUE = 1_700_000_000.25, 1_700_000_003.5, 1_700_000_003.0, 1_700_000_060.0


def at(seconds: float) -> datetime:
    return datetime.fromtimestamp(seconds, UTC)


def test_status_from_a_sent_record() -> None:
    result = {"status": True, "message": "Message sent successfully"}
    record: dict[str, str] = {
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
    record: dict[str, str] = {Field.STATE: view["state"], Field.ATTEMPTS: str(view["attempts"])}
    if view["error"]:
        record[Field.ERROR] = view["error"]
    times = {Field.CREATED_AT: "created_at", Field.UPDATED_AT: "updated_at",
             Field.SENT_AT: "sent_at", Field.DUE_AT: "next_attempt_at"}  # fmt: skip
    for field, name in times.items():
        if view[name]:
            record[field] = repr(datetime.fromisoformat(view[name]).timestamp())
    return record


def test_status_round_trips_through_its_json_view() -> None:
    record: dict[str, str] = {
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
    assert (status.to, status.phone_id) == ("919876543210", "1234567890")
    assert status.created_at is not None
    assert before - 1 <= status.created_at.timestamp() <= time.time() + 1
    assert fake_producer.get_status("0" * 32) is None
    assert fake_producer.get_statuses([job_id, "0" * 32]) == [status, None]


# --- ids that are not job ids ---

NOT_JOB_IDS = ["{id}:events", "", "../x", "{id}x", "{upper}", "no-such-job", "*"]


def not_job_ids(job_id: str) -> list[str]:
    return [shape.format(id=job_id, upper=job_id.upper()) for shape in NOT_JOB_IDS]


def test_get_status_of_an_id_not_shaped_like_a_job_id_is_none(fake_producer: Producer) -> None:
    """Such an id never reaches Redis, even where a hash sits under the key it would build."""
    job_id = fake_producer.enqueue(wire_message())
    records = fake_producer.store.records
    for other in not_job_ids(job_id):
        records.hset(fake_producer.keys.job(other), mapping={Field.STATE: "sent"})

    assert [fake_producer.get_status(other) for other in not_job_ids(job_id)] == [None] * 7
    statuses = fake_producer.get_statuses([job_id, *not_job_ids(job_id)])
    assert statuses[0] is not None and statuses[0].state == JobState.QUEUED
    assert statuses[1:] == [None] * 7


def test_get_status_of_a_malformed_id_asks_no_redis() -> None:
    settings = ProducerSettings(redis_url=UNREACHABLE, socket_timeout=0.5, queue="zq-test")
    unreachable = Producer(settings, Store.connect(settings))
    for other in not_job_ids("ab" * 16):
        assert unreachable.get_status(other) is None
        assert unreachable.cancel(other) is False


# --- settings ---


@pytest.fixture
def clean_environment(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    """No setting of the producer comes from the environment the tests run in."""
    for name in ("REDIS_URL", "CELERY_BROKER_URL", "ZQ_QUEUE", "ZQ_PREFIX", "ZQ_RECORD_TTL",
                 "ZQ_BATCH_SIZE", "ZQ_SOCKET_TIMEOUT"):  # fmt: skip
        monkeypatch.delenv(name, raising=False)
    return monkeypatch


def test_a_redis_url_without_a_scheme_is_a_one_line_configuration_error(
    clean_environment: pytest.MonkeyPatch,
) -> None:
    clean_environment.setenv("REDIS_URL", "localhost:6379")
    with pytest.raises(ConfigurationError) as refused:
        load_settings(ProducerSettings)
    text = str(refused.value)
    assert text.startswith("REDIS_URL='localhost:6379': must be a Redis URL")
    assert "\n" not in text


def test_a_batch_size_that_is_not_a_number_names_its_variable(
    clean_environment: pytest.MonkeyPatch,
) -> None:
    clean_environment.setenv("ZQ_BATCH_SIZE", "abc")
    with pytest.raises(ConfigurationError) as refused:
        load_settings(ProducerSettings)
    assert str(refused.value).startswith("ZQ_BATCH_SIZE='abc': ")
    assert "\n" not in str(refused.value)


def test_every_bad_setting_is_named_on_one_line(clean_environment: pytest.MonkeyPatch) -> None:
    clean_environment.setenv("REDIS_URL", "http://localhost")
    clean_environment.setenv("ZQ_RECORD_TTL", "0")
    with pytest.raises(ConfigurationError) as refused:
        load_settings(ProducerSettings)
    text = str(refused.value)
    assert "REDIS_URL=" in text and "ZQ_RECORD_TTL=" in text and "\n" not in text


def test_settings_from_the_environment(clean_environment: pytest.MonkeyPatch) -> None:
    clean_environment.setenv("REDIS_URL", "redis://redis.internal:6380/2")
    clean_environment.setenv("ZQ_QUEUE", "orders")
    settings = load_settings(ProducerSettings)
    assert settings.redis_url == settings.effective_broker_url == "redis://redis.internal:6380/2"
    assert settings.keys.namespace == "zq:orders"


def test_the_namespace_is_zq_and_the_queue_unless_a_prefix_is_given(
    clean_environment: pytest.MonkeyPatch,
) -> None:
    assert ProducerSettings(queue="a").keys.namespace == "zq:a"
    assert ProducerSettings(queue="a", prefix="x").keys.namespace == "x"
    assert ProducerSettings(queue="a", prefix="x").keys.ready == "x:ready"
    assert ProducerSettings(queue="a").keys.job("0" * 32) == "zq:a:job:" + "0" * 32
    clean_environment.setenv("ZQ_PREFIX", "tenant-7:zq")
    assert load_settings(ProducerSettings).keys.namespace == "tenant-7:zq"


def test_deployments_sharing_one_redis_never_see_each_others_jobs(fake_store: Store) -> None:
    first = Producer(ProducerSettings(redis_url="redis://fake/0", queue="a"), fake_store)
    second = Producer(ProducerSettings(redis_url="redis://fake/0", queue="b"), fake_store)

    job_id = first.enqueue(wire_message())
    later = first.enqueue(wire_message(), send_at=time.time() + 600)

    assert second.get_status(job_id) is None
    assert second.cancel(later) is False
    assert first.get_status(later) is not None
    keys = cast(list[str], fake_store.records.keys("*"))
    assert keys and all(key.startswith("zq:a:") or key == "a" for key in keys)
    assert second.enqueue(wire_message()) != job_id
    assert fake_store.records.llen(first.keys.ready) == fake_store.records.llen("a") == 1
    assert fake_store.records.llen(second.keys.ready) == fake_store.records.llen("b") == 1


# --- records and queue in separate Redis servers ---


@pytest.fixture
def split_producer() -> Producer:
    records = fakeredis.FakeRedis(server=fakeredis.FakeServer(), decode_responses=True)
    broker = fakeredis.FakeRedis(server=fakeredis.FakeServer(), decode_responses=True)
    settings = ProducerSettings(redis_url="redis://records/0", queue="zq-test")
    return Producer(settings, Store(records, broker, shared=False))


def ready(producer: Producer) -> list[str]:
    """The ready list, newest first."""
    return cast(list[str], producer.store.records.lrange(producer.keys.ready, 0, -1))


def test_split_store_enqueue_writes_each_part_to_its_own_server(split_producer: Producer) -> None:
    job_id = split_producer.enqueue(wire_message())

    records, broker, keys = (split_producer.store.records, split_producer.store.broker,
                             split_producer.keys)  # fmt: skip
    assert records.hget(keys.job(job_id), Field.STATE) == "queued"
    assert ready(split_producer) == [job_id]
    assert records.exists("zq-test") == 0
    assert broker.exists(keys.job(job_id), keys.ready) == 0
    assert broker.llen("zq-test") == 1


def test_split_store_enqueue_many_writes_each_part_to_its_own_server(
    split_producer: Producer,
) -> None:
    job_ids = split_producer.enqueue_many([wire_message(), wire_message(to="14155550100")])

    records, broker, keys = (split_producer.store.records, split_producer.store.broker,
                             split_producer.keys)  # fmt: skip
    assert [records.hget(keys.job(job_id), Field.TO) for job_id in job_ids] == [
        "919876543210",
        "14155550100",
    ]
    assert ready(split_producer) == job_ids[::-1]
    assert records.exists("zq-test") == 0
    assert broker.keys("*") == ["zq-test"]
    assert broker.llen("zq-test") == 1
    split_producer.enqueue(wire_message())  # the wake-up flag still waits: no second message
    assert broker.llen("zq-test") == 1


def test_split_store_enqueue_many_pushes_the_wakeup_after_the_records(
    split_producer: Producer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A worker woken at once must find the jobs and their records."""
    records, broker = split_producer.store.records, split_producer.store.broker
    seen_at_push: list[tuple[set[str], list[str]]] = []
    push = broker.lpush

    def recording_push(queue: str, *messages: str) -> object:
        job_keys = cast(list[str], records.keys(split_producer.keys.job("*")))
        seen_at_push.append((set(job_keys), ready(split_producer)))
        return push(queue, *messages)

    monkeypatch.setattr(broker, "lpush", recording_push)
    job_ids = split_producer.enqueue_many(wire_messages(250))

    assert seen_at_push == [({split_producer.keys.job(job_id) for job_id in job_ids},
                             job_ids[::-1])]  # fmt: skip
    assert ready(split_producer) == job_ids[::-1]


def test_split_store_a_lost_wakeup_does_not_fail_the_enqueue(
    split_producer: Producer, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """The jobs are stored; a worker finds them without the wake-up."""
    import redis  # noqa: PLC0415

    def refuse(queue: str, *messages: str) -> object:
        raise redis.ConnectionError("broker down")

    monkeypatch.setattr(split_producer.store.broker, "lpush", refuse)
    job_id = split_producer.enqueue(wire_message())

    assert ready(split_producer) == [job_id]
    assert "jobs stored, but their wake-up was not published" in caplog.text


def test_empty_variables_of_optional_settings_mean_unset(monkeypatch: pytest.MonkeyPatch) -> None:
    """As docker-compose passes a variable the shell did not set (`${VAR:-}`)."""
    from worker.settings import WorkerSettings  # noqa: PLC0415 - the worker's own settings

    for variable in ("CELERY_BROKER_URL", "ZQ_WEBHOOK_SECRET"):
        monkeypatch.setenv(variable, "")
    settings = WorkerSettings()
    assert (settings.broker_url, settings.webhook_secret) == (None, None)
