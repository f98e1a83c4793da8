"""Enqueueing on fakeredis: records, the ready list, wake-ups, send times, cancel, idempotency."""

from __future__ import annotations

import base64
import importlib
import json
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from typing import Any, cast

import celery
import pytest

from producer import IdempotencyConflict, JobState, Producer, ValidationError
from producer.envelope import WAKEUP_TTL_MS
from producer.keys import TASK_NAME
from producer.record import Field
from producer.settings import ProducerSettings
from producer.store import Store
from tests.support import wire_message, wire_messages

QUEUE = "zq-test"
"""The queue of the `settings` fixture."""
enqueue_module = importlib.import_module("producer.enqueue")
"""The module (the package's `producer.enqueue` attribute is the function)."""


def record(producer: Producer, job_id: str) -> dict[str, str]:
    return cast(dict[str, str], producer.store.records.hgetall(producer.keys.job(job_id)))


def ready(producer: Producer) -> list[str]:
    """The ready list, newest first (it is LPUSHed: the right end is the oldest)."""
    return cast(list[str], producer.store.records.lrange(producer.keys.ready, 0, -1))


def queue_items(producer: Producer) -> list[str]:
    """The broker's task messages on the deployment's queue, newest first."""
    return cast(list[str], producer.store.broker.lrange(QUEUE, 0, -1))


def scheduled(producer: Producer) -> dict[str, float]:
    pairs = producer.store.records.zrange(producer.keys.schedule, 0, -1, withscores=True)
    return dict(cast(list[tuple[str, float]], pairs))


def history(producer: Producer, job_id: str) -> list[dict[str, Any]]:
    entries = producer.store.records.lrange(producer.keys.history(job_id), 0, -1)
    return [json.loads(entry) for entry in cast(list[str], entries)]


def job_keys(producer: Producer) -> list[str]:
    return cast(list[str], producer.store.records.keys(producer.keys.job("*")))


# --- one job ---


def test_enqueue_writes_the_record_and_puts_the_job_on_the_ready_list(
    fake_producer: Producer,
) -> None:
    job_id = fake_producer.enqueue(wire_message())

    stored = record(fake_producer, job_id)
    assert stored["state"] == "queued"
    assert stored["attempts"] == "0"
    assert (stored["to"], stored["phone_id"]) == ("919876543210", "1234567890")
    assert json.loads(stored["buttons"]) == ["yes", "no"]
    assert json.loads(stored["message"])["source"] == "API"
    records = fake_producer.store.records
    assert records.ttl(fake_producer.keys.job(job_id)) == fake_producer.settings.record_ttl
    assert ready(fake_producer) == [job_id]
    assert records.zscore(fake_producer.keys.unfinished, job_id) is not None
    assert len(queue_items(fake_producer)) == 1


def test_button_ids_are_stored_as_json_whatever_their_characters(
    fake_producer: Producer,
) -> None:
    ids = ['s\u00ed "ok"', "back\\slash", "\u0928\u0939\u0940\u0902"]
    buttons = [
        {"type": "reply", "reply": {"id": id_, "title": f"B{n}"}} for n, id_ in enumerate(ids)
    ]
    message = wire_message()
    message["interactive"]["action"]["buttons"] = buttons  # type: ignore[index]
    job_id = fake_producer.enqueue(message)
    assert json.loads(record(fake_producer, job_id)["buttons"]) == ids


def test_job_ids_look_like_job_ids(fake_producer: Producer) -> None:
    job_ids = [fake_producer.enqueue(wire_message()) for _ in range(3)]
    assert len(set(job_ids)) == 3
    assert all(len(job_id) == 32 and int(job_id, 16) >= 0 for job_id in job_ids)
    assert all(job_id == job_id.lower() for job_id in job_ids)


def test_wire_message_has_defaults_and_no_nulls(fake_producer: Producer) -> None:
    job_id = fake_producer.enqueue(wire_message(to="+91 98765-43210"))
    sent = json.loads(record(fake_producer, job_id)["message"])
    assert sent["to"] == "919876543210"
    assert sent["type"] == "interactive"
    assert sent["interactive"]["type"] == "button"
    assert (sent["source"], sent["linkWithRecord"], sent["submissionStatus"]) == (
        "API",
        False,
        False,
    )
    assert "null" not in json.dumps(sent)


def test_invalid_message_is_refused_and_nothing_is_queued(fake_producer: Producer) -> None:
    bad = wire_message()
    bad["interactive"]["action"]["buttons"] = []  # type: ignore[index]
    with pytest.raises(ValidationError, match=r"interactive\.action\.buttons"):
        fake_producer.enqueue(bad)
    assert fake_producer.store.records.dbsize() == 0


# --- wake-ups ---


def test_one_enqueue_publishes_one_wakeup_and_more_publish_none_while_it_waits(
    fake_producer: Producer,
) -> None:
    records, wakeup = fake_producer.store.records, fake_producer.keys.wakeup
    fake_producer.enqueue(wire_message())
    assert len(queue_items(fake_producer)) == 1
    assert 0 < records.pttl(wakeup) <= WAKEUP_TTL_MS
    records.persist(wakeup)  # the flag stays set however slow this machine is

    fake_producer.enqueue(wire_message())
    fake_producer.enqueue_many(wire_messages(5))

    assert len(ready(fake_producer)) == 7
    assert len(queue_items(fake_producer)) == 1


def test_a_wakeup_is_published_again_once_the_flag_is_gone(fake_producer: Producer) -> None:
    fake_producer.enqueue(wire_message())
    fake_producer.store.records.delete(fake_producer.keys.wakeup)  # a worker took the wake-up
    fake_producer.enqueue(wire_message())
    assert len(queue_items(fake_producer)) == 2


def decode(raw: str) -> tuple[dict[str, Any], list[Any]]:
    """A task message as kombu's Redis transport stores it: the wrapper and the decoded body."""
    message = json.loads(raw)
    assert message["content-type"] == "application/json"
    assert message["content-encoding"] == "utf-8"
    assert message["properties"]["body_encoding"] == "base64"
    return message, json.loads(base64.b64decode(message["body"]))


def test_wakeup_is_a_celery_protocol_2_message_without_arguments(fake_producer: Producer) -> None:
    fake_producer.enqueue(wire_message())
    fake_producer.store.records.delete(fake_producer.keys.wakeup)
    fake_producer.enqueue(wire_message())

    messages = [decode(raw) for raw in queue_items(fake_producer)]
    assert len(messages) == 2
    for message, body in messages:
        headers, properties = message["headers"], message["properties"]
        assert body == [[], {}, {"callbacks": None, "errbacks": None, "chain": None, "chord": None}]
        assert headers["task"] == TASK_NAME
        assert headers["id"] == properties["correlation_id"] == headers["root_id"]
        assert (headers["argsrepr"], headers["kwargsrepr"]) == ("()", "{}")
        assert properties["delivery_info"] == {"exchange": "", "routing_key": QUEUE}
    assert len({message["headers"]["id"] for message, _ in messages}) == 2
    assert len({message["properties"]["delivery_tag"] for message, _ in messages}) == 2


def test_wakeup_has_the_headers_and_body_shape_celery_itself_writes(
    fake_producer: Producer,
) -> None:
    reference = celery.Celery(set_as_current=False).amqp.as_task_v2("a-task-id", TASK_NAME, args=())
    fake_producer.enqueue(wire_message())

    message, body = decode(queue_items(fake_producer)[0])

    assert set(message["headers"]) == set(reference.headers)
    assert set(reference.properties) <= set(message["properties"])
    args, kwargs, embed = reference.body
    assert len(body) == 3
    assert body[:2] == [list(args), kwargs]
    assert body[2] == embed


# --- send times ---


def test_a_future_send_at_schedules_the_job_and_wakes_no_one(fake_producer: Producer) -> None:
    send_at = datetime.now(UTC).replace(microsecond=0) + timedelta(hours=2)
    job_id = fake_producer.enqueue(wire_message(), send_at=send_at)

    status = fake_producer.get_status(job_id)
    assert status is not None
    assert status.state == JobState.SCHEDULED
    assert status.send_at == status.next_attempt_at == send_at
    assert scheduled(fake_producer) == {job_id: send_at.timestamp()}
    assert ready(fake_producer) == []
    assert queue_items(fake_producer) == []
    assert fake_producer.store.records.exists(fake_producer.keys.wakeup) == 0


def test_a_past_send_at_queues_the_job_now(fake_producer: Producer) -> None:
    job_id = fake_producer.enqueue(wire_message(), send_at=datetime.now(UTC) - timedelta(hours=1))
    assert record(fake_producer, job_id)["state"] == "queued"
    assert Field.SEND_AT not in record(fake_producer, job_id)
    assert ready(fake_producer) == [job_id]
    assert scheduled(fake_producer) == {}
    assert len(queue_items(fake_producer)) == 1


def test_send_at_in_epoch_seconds_is_accepted(fake_producer: Producer) -> None:
    moment = int(time.time()) + 600
    job_id = fake_producer.enqueue(wire_message(), send_at=moment)
    assert record(fake_producer, job_id)["state"] == "scheduled"
    assert scheduled(fake_producer) == {job_id: float(moment)}


def test_a_naive_send_at_is_refused(fake_producer: Producer) -> None:
    with pytest.raises(ValidationError, match=r"send_at: must be timezone-aware"):
        fake_producer.enqueue(wire_message(), send_at=datetime.now() + timedelta(hours=1))
    assert fake_producer.store.records.dbsize() == 0


def test_a_send_at_beyond_the_record_lifetime_is_refused(fake_producer: Producer) -> None:
    too_late = datetime.now(UTC) + timedelta(days=8)
    with pytest.raises(ValidationError) as refused:
        fake_producer.enqueue(wire_message(), send_at=too_late)
    assert [problem.path for problem in refused.value.problems] == ["send_at"]
    assert "ZQ_RECORD_TTL, 7 days" in str(refused.value)
    assert fake_producer.store.records.dbsize() == 0


# --- cancel ---


def test_cancel_a_queued_job(fake_producer: Producer) -> None:
    job_id = fake_producer.enqueue(wire_message())

    assert fake_producer.cancel(job_id) is True

    status = fake_producer.get_status(job_id)
    assert status is not None and status.state == JobState.CANCELED and status.final
    assert [entry["event"] for entry in history(fake_producer, job_id)] == ["canceled"]
    assert fake_producer.store.records.zscore(fake_producer.keys.unfinished, job_id) is None
    assert fake_producer.cancel(job_id) is False
    assert len(history(fake_producer, job_id)) == 1


def test_cancel_a_scheduled_job_takes_it_off_the_schedule(fake_producer: Producer) -> None:
    job_id = fake_producer.enqueue(wire_message(), send_at=time.time() + 600)
    assert scheduled(fake_producer) == {job_id: pytest.approx(time.time() + 600, abs=60)}

    assert fake_producer.cancel(job_id) is True

    assert record(fake_producer, job_id)["state"] == "canceled"
    assert Field.DUE_AT not in record(fake_producer, job_id)
    assert scheduled(fake_producer) == {}


def test_cancel_a_retrying_job(fake_producer: Producer) -> None:
    job_id = fake_producer.enqueue(wire_message())
    fake_producer.store.records.hset(fake_producer.keys.job(job_id), Field.STATE, "retrying")
    assert fake_producer.cancel(job_id) is True
    assert record(fake_producer, job_id)["state"] == "canceled"


@pytest.mark.parametrize("state", ["sending", "sent", "failed"])
def test_a_job_sending_or_finished_cannot_be_canceled(fake_producer: Producer, state: str) -> None:
    job_id = fake_producer.enqueue(wire_message())
    fake_producer.store.records.hset(fake_producer.keys.job(job_id), Field.STATE, state)

    assert fake_producer.cancel(job_id) is False

    assert record(fake_producer, job_id)["state"] == state
    assert history(fake_producer, job_id) == []


@pytest.mark.parametrize("job_id", ["0" * 32, "", "no-such-job", "../x", "A" * 32])
def test_cancel_of_an_unknown_or_malformed_id_is_false(
    fake_producer: Producer, job_id: str
) -> None:
    assert fake_producer.cancel(job_id) is False
    assert fake_producer.store.records.dbsize() == 0


# --- callback URL ---


def test_callback_url_is_stored_on_the_record(fake_producer: Producer) -> None:
    url = "https://example.com/hooks/zixflow?tenant=7"
    job_id = fake_producer.enqueue(wire_message(), callback_url=url)
    assert record(fake_producer, job_id)[Field.CALLBACK_URL] == url
    assert Field.CALLBACK_URL not in record(fake_producer, fake_producer.enqueue(wire_message()))


@pytest.mark.parametrize("url", ["ftp://example.com/hook", "example.com/hook", "file:///etc/x"])
def test_a_callback_url_that_is_not_http_is_refused(fake_producer: Producer, url: str) -> None:
    with pytest.raises(ValidationError) as refused:
        fake_producer.enqueue(wire_message(), callback_url=url)
    assert [problem.path for problem in refused.value.problems] == ["callback_url"]
    assert fake_producer.store.records.dbsize() == 0


# --- idempotency ---


def test_same_idempotency_key_and_message_give_the_same_job(fake_producer: Producer) -> None:
    first = fake_producer.enqueue(wire_message(), idempotency_key="order-42")
    fake_producer.store.records.delete(fake_producer.keys.wakeup)
    keys_before = sorted(cast(list[str], fake_producer.store.records.keys("*")))

    again = fake_producer.enqueue(wire_message(), idempotency_key="order-42")

    assert first == again
    assert ready(fake_producer) == [first]
    assert len(queue_items(fake_producer)) == 1  # a retry wakes no one: nothing new to send
    assert sorted(cast(list[str], fake_producer.store.records.keys("*"))) == keys_before
    assert record(fake_producer, first)[Field.IDEMPOTENCY_KEY] == "order-42"


def test_same_idempotency_key_with_another_message_is_refused(fake_producer: Producer) -> None:
    fake_producer.enqueue(wire_message(), idempotency_key="order-42")
    with pytest.raises(IdempotencyConflict, match="order-42"):
        fake_producer.enqueue(wire_message(to="919800000001"), idempotency_key="order-42")
    with pytest.raises(IdempotencyConflict):
        fake_producer.enqueue(wire_message(), idempotency_key="order-42", send_at=time.time() + 60)
    assert len(ready(fake_producer)) == 1
    assert len(job_keys(fake_producer)) == 1


def test_a_conflict_shows_a_long_key_cut_short(fake_producer: Producer) -> None:
    key = "k" * 100 + "-the-end"
    fake_producer.enqueue(wire_message(), idempotency_key=key)
    with pytest.raises(IdempotencyConflict) as refused:
        fake_producer.enqueue(wire_message(to="919800000001"), idempotency_key=key)
    text = str(refused.value)
    assert "k" * 61 + "..." in text
    assert "the-end" not in text
    assert len(text) < 200


@pytest.mark.parametrize(
    ("key", "problem"),
    [
        ("x" * 10_000, "must be at most 255 characters, got 10000"),
        ("", "must not be empty"),
        ("order\n42", "printable"),
    ],
    ids=["10 kB", "empty", "control character"],
)
def test_a_bad_idempotency_key_is_refused(fake_producer: Producer, key: str, problem: str) -> None:
    with pytest.raises(ValidationError) as refused:
        fake_producer.enqueue(wire_message(), idempotency_key=key)
    assert [p.path for p in refused.value.problems] == ["idempotency_key"]
    assert problem in str(refused.value)
    assert len(str(refused.value)) < 300
    assert fake_producer.store.records.dbsize() == 0


def test_an_idempotency_key_of_255_characters_is_fine(fake_producer: Producer) -> None:
    key = "k" * 255
    assert fake_producer.enqueue(wire_message(), idempotency_key=key) == fake_producer.enqueue(
        wire_message(), idempotency_key=key
    )


def test_enqueue_many_under_a_key_returns_the_same_ids_on_retry(fake_producer: Producer) -> None:
    messages = wire_messages(5)
    first = fake_producer.enqueue_many(messages, idempotency_key="batch-7")
    fake_producer.store.records.delete(fake_producer.keys.wakeup)
    size_before = fake_producer.store.records.dbsize()

    again = fake_producer.enqueue_many(messages, idempotency_key="batch-7")

    assert again == first and len(set(first)) == 5
    assert ready(fake_producer) == first[::-1]
    assert fake_producer.store.records.dbsize() == size_before
    assert len(queue_items(fake_producer)) == 1
    with pytest.raises(IdempotencyConflict):
        fake_producer.enqueue_many(messages[:4], idempotency_key="batch-7")


@pytest.fixture
def real_producer(redis_url: str) -> Producer:
    """A producer on the tests' real Redis database, for many threads or many jobs."""
    settings = ProducerSettings(redis_url=redis_url, queue=QUEUE)
    return Producer(settings, Store.connect(settings, threads=16))


def test_concurrent_enqueues_with_one_key_make_one_job(real_producer: Producer) -> None:
    producer = real_producer
    start = threading.Barrier(16)

    def enqueue(_: int) -> str:
        start.wait(timeout=10)
        return producer.enqueue(wire_message(), idempotency_key="order-42")

    with ThreadPoolExecutor(16) as pool:
        job_ids = set(pool.map(enqueue, range(16)))

    assert len(job_ids) == 1
    assert ready(producer) == list(job_ids)
    assert len(job_keys(producer)) == 1
    assert len(queue_items(producer)) == 1


# --- batches ---


def jobs_in(args: list[Any]) -> int:
    """How many jobs one call of enqueue.lua stores: after 8 common arguments, each job is
    its id, its due time, its recipient, a pair count n and n field-value pairs."""
    count, at = 0, 8
    while at < len(args):
        at += 4 + 2 * int(args[at + 3])
        count += 1
    return count


def test_enqueue_many_stores_2500_jobs_in_three_chunks_in_order(
    real_producer: Producer, monkeypatch: pytest.MonkeyPatch
) -> None:
    script = real_producer._enqueue
    chunk_sizes: list[int] = []

    def counting(*, keys: list[str], args: list[Any], client: Any = None) -> Any:
        chunk_sizes.append(jobs_in(args))
        return script(keys=keys, args=args, client=client)

    monkeypatch.setattr(real_producer, "_enqueue", counting)
    messages = wire_messages(2500)
    job_ids = real_producer.enqueue_many(messages)

    assert chunk_sizes == [1000, 1000, 500]
    assert len(set(job_ids)) == 2500
    assert ready(real_producer)[::-1] == job_ids
    pipe = real_producer.store.records.pipeline(transaction=False)
    for job_id in job_ids:
        pipe.hget(real_producer.keys.job(job_id), Field.TO)
    assert pipe.execute() == [message["to"] for message in messages]
    assert len(queue_items(real_producer)) == 1


def test_enqueue_many_refuses_more_than_max_batch(
    fake_producer: Producer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(enqueue_module, "MAX_BATCH", 10)
    with pytest.raises(ValueError, match="at most 10 jobs per call, got 11"):
        fake_producer.enqueue_many(wire_messages(11))
    assert fake_producer.store.records.dbsize() == 0
    assert len(fake_producer.enqueue_many(wire_messages(10))) == 10


def test_enqueue_many_refuses_the_whole_batch_naming_bad_items(fake_producer: Producer) -> None:
    messages = [wire_message(), wire_message(to="12"), wire_message(), wire_message(phoneId="")]
    with pytest.raises(ValidationError) as refused:
        fake_producer.enqueue_many(messages)
    assert {problem.item for problem in refused.value.problems} == {1, 3}
    assert "item 1" in str(refused.value) and "item 3" in str(refused.value)
    assert fake_producer.store.records.dbsize() == 0


def test_enqueue_many_of_nothing_queues_nothing(fake_producer: Producer) -> None:
    assert fake_producer.enqueue_many([]) == []
    assert fake_producer.store.records.dbsize() == 0
